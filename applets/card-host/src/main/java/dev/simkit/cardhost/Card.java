package dev.simkit.cardhost;

import com.licel.jcardsim.base.Simulator;
import dev.simkit.cardhost.instrument.CardClassLoader;
import dev.simkit.cardhost.runtime.DigestFactory;
import dev.simkit.cardhost.runtime.PowerLoss;
import dev.simkit.cardhost.runtime.SimkitRuntime;
import java.net.URL;
import java.util.ArrayList;
import java.util.List;
import javacard.framework.AID;
import javacard.framework.Applet;

/**
 * One simulated card: a jCardSim {@link Simulator} over a {@link SimkitRuntime}, its own
 * {@link CardClassLoader} (so applet statics are per card), and its power state.
 *
 * <p>Every operation is synchronized on the card: commands from several connections to one
 * card are serialised, different cards run in parallel (jCardSim keeps the current runtime in a
 * thread-local, and our write hook does the same).
 */
public final class Card {
    /** What happened to a command. */
    public enum Outcome { OK, POWER_LOST, POWERED_OFF }

    /** Result of {@link #transmit}: the response APDU (data ‖ SW1 SW2) when OK, else empty. */
    public record Result(Outcome outcome, byte[] response) {
        static final byte[] NONE = new byte[0];
    }

    /** An applet installed on this card. */
    public record Installed(byte[] aid, String className) {
    }

    private final int index;
    private final boolean rollback;
    private final URL[] appletJars;
    private final ClassLoader parent;
    private final List<String> extraAppletPackages;
    private final boolean fastDigest;
    // Replaced as a whole by factoryReset(); guarded by this.
    private SimkitRuntime runtime;
    private Simulator simulator;
    private CardClassLoader loader;
    private final List<Installed> applets = new ArrayList<>();
    /** Every applet installed, in order: what {@link #factoryReset} installs again. */
    private final List<AppletSpec> installed = new ArrayList<>();
    private boolean powered = true;

    public Card(int index, boolean rollback, URL[] appletJars, ClassLoader parent) {
        this(index, rollback, appletJars, parent, List.of());
    }

    /**
     * @param extraAppletPackages packages rewritten like applet packages although no installed
     *     applet class lives in them (shared helper code of the applets)
     */
    public Card(int index, boolean rollback, URL[] appletJars, ClassLoader parent, List<String> extraAppletPackages) {
        this(index, rollback, appletJars, parent, extraAppletPackages, DigestFactory.enabledByDefault());
    }

    /**
     * @param extraAppletPackages packages rewritten like applet packages although no installed
     *     applet class lives in them (shared helper code of the applets)
     * @param fastDigest give applets JDK-backed SHA digests ({@link DigestFactory}) instead of
     *     jCardSim's BouncyCastle ones; the other constructors take the default,
     *     {@link DigestFactory#enabledByDefault()} (on unless {@code -Dsimkit.fastDigest=false})
     */
    public Card(int index, boolean rollback, URL[] appletJars, ClassLoader parent, List<String> extraAppletPackages,
            boolean fastDigest) {
        this.index = index;
        this.fastDigest = fastDigest;
        this.rollback = rollback;
        this.appletJars = appletJars.clone();
        this.parent = parent;
        this.extraAppletPackages = List.copyOf(extraAppletPackages);
        fresh();
    }

    /** A blank card: new runtime, simulator and class loader (so fresh applet statics too). */
    private void fresh() {
        this.runtime = new SimkitRuntime(rollback);
        // Simulator's constructor wipes the runtime (resetRuntime) and reads jCardSim's
        // applet system properties; we install applets ourselves afterwards.
        this.simulator = new Simulator(runtime);
        this.loader = new CardClassLoader("simkit-card-" + index, appletJars, parent, fastDigest);
        extraAppletPackages.forEach(loader::addAppletPackage);
    }

    /**
     * Factory reset: throws the card away and builds it again from its spec — a new runtime and
     * class loader, every applet installed so far (startup {@code --card} applets and INSTALLed
     * ones, in order) installed afresh, so persistent state, applet statics, an armed tear and
     * the write count are all back to a new card's. The card is powered on.
     *
     * @return the ATR
     */
    public synchronized byte[] factoryReset() {
        List<AppletSpec> specs = List.copyOf(installed);
        installed.clear();
        applets.clear();
        fresh();
        for (AppletSpec spec : specs) {
            install(spec);
        }
        powered = true;
        return simulator.getATR();
    }

    public int index() {
        return index;
    }

    public boolean rollbackEnabled() {
        return runtime.rollbackEnabled();
    }

    /** True if the card's applets get JDK-backed SHA digests (see {@link DigestFactory}). */
    public boolean fastDigest() {
        return fastDigest;
    }

    public synchronized boolean powered() {
        return powered;
    }

    public synchronized List<Installed> applets() {
        return List.copyOf(applets);
    }

    /** Sends one command APDU; never throws for a tear (see {@link Outcome#POWER_LOST}). */
    public synchronized Result transmit(byte[] apdu) {
        if (!powered) {
            return new Result(Outcome.POWERED_OFF, Result.NONE);
        }
        if (apdu.length < 4) {
            throw new IllegalArgumentException("command APDU shorter than 4 bytes");
        }
        try {
            return new Result(Outcome.OK, simulator.transmitCommand(apdu));
        } catch (PowerLoss e) {
            // The runtime has already rolled back and reset the card; it is powered again and
            // ready for the next command (as if the reader had re-powered it at once).
            return new Result(Outcome.POWER_LOST, Result.NONE);
        }
    }

    /** Warm reset: no applet selected, transient memory cleared; powers the card if it was off. */
    public synchronized byte[] reset() {
        simulator.reset();
        powered = true;
        return simulator.getATR();
    }

    public synchronized void powerOff() {
        simulator.reset();
        powered = false;
    }

    public synchronized byte[] powerOn() {
        return reset();
    }

    public synchronized byte[] atr() {
        return simulator.getATR();
    }

    /** Arms a tear after the k-th persistent write of the next command (0 disarms). */
    public synchronized void armTear(int k) {
        runtime.armTear(k);
    }

    public synchronized int lastWriteCount() {
        return runtime.lastWriteCount();
    }

    /**
     * Installs an applet: loads (and rewrites) its class in this card's loader, then calls its
     * {@code install(byte[], short, byte)} with GlobalPlatform-style install data
     * {@code [len AID][AID][len 0 (privileges)][len params][params]}, which is what
     * {@code register(bArray, (short)(bOffset + 1), bArray[bOffset])} expects.
     */
    public synchronized void install(AppletSpec spec) {
        Class<? extends Applet> cls;
        try {
            Class<?> c = loader.loadAppletClass(spec.className());
            if (!Applet.class.isAssignableFrom(c)) {
                throw new IllegalArgumentException(spec.className() + " does not extend javacard.framework.Applet");
            }
            cls = c.asSubclass(Applet.class);
        } catch (ClassNotFoundException e) {
            throw new IllegalArgumentException("applet class not found: " + spec.className(), e);
        }
        byte[] data = installData(spec.aid(), spec.params());
        AID aid = new AID(spec.aid(), (short) 0, (byte) spec.aid().length);
        try {
            runtime.runOnCard(() -> simulator.installApplet(aid, cls, data, (short) 0, (byte) data.length));
        } catch (RuntimeException e) {
            throw new IllegalStateException("install of " + spec + " failed: " + e, e);
        }
        applets.add(new Installed(spec.aid().clone(), spec.className()));
        installed.add(spec);
    }

    static byte[] installData(byte[] aid, byte[] params) {
        int len = 1 + aid.length + 1 + 1 + params.length;
        if (len > 127) {
            throw new IllegalArgumentException("install data longer than 127 bytes");
        }
        byte[] d = new byte[len];
        int o = 0;
        d[o++] = (byte) aid.length;
        System.arraycopy(aid, 0, d, o, aid.length);
        o += aid.length;
        d[o++] = 0; // no privileges
        d[o++] = (byte) params.length;
        System.arraycopy(params, 0, d, o, params.length);
        return d;
    }

    /** The underlying runtime, for in-process tests and benchmarks. */
    public synchronized SimkitRuntime runtime() {
        return runtime;
    }
}
