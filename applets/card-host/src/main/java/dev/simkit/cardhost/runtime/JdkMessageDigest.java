package dev.simkit.cardhost.runtime;

import java.security.NoSuchAlgorithmException;
import javacard.security.MessageDigest;

/**
 * A Java Card {@link MessageDigest} backed by the JDK's {@link java.security.MessageDigest}
 * (SHA-1, SHA-224, SHA-256, SHA-384, SHA-512), which HotSpot runs with the CPU's SHA
 * instructions where it has them — six to seven times faster for SHA-256 than the pure-Java BouncyCastle copy
 * behind jCardSim's {@code com.licel.jcardsim.crypto.MessageDigestImpl}. {@link DigestFactory}
 * hands it to applets instead of jCardSim's implementation (see the card host README).
 *
 * <p>Java Card semantics, and jCardSim's behaviour where the API leaves room, are kept:
 * <ul>
 *   <li>{@code update} with a length of zero or less does nothing, even with a null buffer
 *       (BouncyCastle's {@code update} takes {@code max(0, len)});</li>
 *   <li>a positive length with a null buffer throws {@link NullPointerException}; a range
 *       outside the buffer throws {@link ArrayIndexOutOfBoundsException};</li>
 *   <li>{@code doFinal} hashes the last input, writes the digest at {@code outOffset}, returns
 *       its length and resets the object. When the digest does not fit, the bytes that do fit
 *       are written (jCardSim writes the digest byte by byte until it runs off the array) and
 *       {@link ArrayIndexOutOfBoundsException} is thrown; with a null {@code outBuff},
 *       {@link NullPointerException}.</li>
 * </ul>
 * After an exception the object's state is unspecified (the Java Card API says nothing;
 * jCardSim's object has by then consumed part of the input or been finalised without a reset):
 * call {@link #reset()}. This one is left unchanged by a bad input range and reset by a failed
 * output.
 *
 * <p>Like jCardSim's implementation, this is library code, not applet code: the digest it writes
 * into an applet's array does not go through the write hook, so it is neither counted, logged for
 * rollback, nor torn; and the digest state itself is not rolled back by a transaction abort.
 */
public final class JdkMessageDigest extends MessageDigest {
    private final byte algorithm;
    private final byte length;
    private final java.security.MessageDigest md;

    /**
     * @param algorithm the Java Card algorithm constant ({@code MessageDigest.ALG_*})
     * @param jdkName the JDK's name of the same algorithm
     * @throws NoSuchAlgorithmException if the JDK has no such digest
     */
    JdkMessageDigest(byte algorithm, String jdkName) throws NoSuchAlgorithmException {
        this.algorithm = algorithm;
        this.md = java.security.MessageDigest.getInstance(jdkName);
        this.length = (byte) md.getDigestLength();
    }

    @Override
    public byte getAlgorithm() {
        return algorithm;
    }

    @Override
    public byte getLength() {
        return length;
    }

    @Override
    public void update(byte[] inBuff, short inOffset, short inLength) {
        if (inLength <= 0) {
            return;
        }
        int n = inBuff.length; // NPE for null, as jCardSim's
        if (inOffset < 0 || inOffset > n - inLength) {
            throw new ArrayIndexOutOfBoundsException("digest input offset " + inOffset + " length " + inLength
                    + " array " + n);
        }
        md.update(inBuff, inOffset, inLength);
    }

    @Override
    public short doFinal(byte[] inBuff, short inOffset, short inLength, byte[] outBuff, short outOffset) {
        update(inBuff, inOffset, inLength);
        byte[] digest = md.digest(); // resets md
        int n = outBuff.length; // NPE for null, as jCardSim's
        int fit = outOffset < 0 ? 0 : Math.max(0, Math.min(length, n - outOffset));
        if (fit > 0) {
            System.arraycopy(digest, 0, outBuff, outOffset, fit);
        }
        if (fit < length) {
            throw new ArrayIndexOutOfBoundsException("digest output offset " + outOffset + " length " + length
                    + " array " + n);
        }
        return length;
    }

    @Override
    public void reset() {
        md.reset();
    }
}
