package dev.simkit.cardhost.instrument;

/** What the rewriter needs to know about the card it rewrites classes for. */
interface AppletScope {
    /** True if {@code internalName} (slash form) belongs to one of the card's applet packages. */
    boolean isAppletInternalName(String internalName);

    /** The id under which the write hook can find (and reflectively restore) this field. */
    int fieldId(String ownerInternalName, String name, String desc);

    /**
     * True if {@code MessageDigest.getInstance} calls are redirected to the JDK-backed
     * {@code runtime.DigestFactory}; false keeps jCardSim's implementation.
     */
    boolean fastDigest();
}
