package dev.simkit.cardhost.runtime;

/**
 * Thrown by the write hook when a simulated tear cuts the card's power.
 *
 * <p>It is an {@link Error}, not an exception, on purpose: applets routinely wrap code in
 * {@code catch (ISOException)}, {@code catch (CardRuntimeException)} or {@code catch (Exception)};
 * none of those may swallow a power loss, because on a real card no applet code runs after the
 * power is gone. Once power is lost every further hook call throws again, so even an applet
 * that catches {@code Throwable} cannot make another persistent write in that command.
 */
public final class PowerLoss extends Error {
    private static final long serialVersionUID = 1L;

    public PowerLoss(String message) {
        super(message);
    }
}
