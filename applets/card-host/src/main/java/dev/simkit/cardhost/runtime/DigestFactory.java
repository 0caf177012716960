package dev.simkit.cardhost.runtime;

import java.security.NoSuchAlgorithmException;
import javacard.security.MessageDigest;

/**
 * The card host's replacement for {@code javacard.security.MessageDigest.getInstance(byte,
 * boolean)}: the instrumenter redirects that call in applet classes here when the card's fast
 * digests are on (the default; {@code --jcardsim-digest} or {@code -Dsimkit.fastDigest=false}
 * turns them off, see {@code Card}).
 *
 * <p>SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512 without external access get a
 * {@link JdkMessageDigest}. Everything else — MD5, RIPEMD-160, the SHA-3 family, unknown
 * algorithms, {@code externalAccess == true} — goes to jCardSim's own factory, so the errors are
 * exactly jCardSim's ({@code CryptoException.NO_SUCH_ALGORITHM}). The initialised variant
 * ({@code getInitializedMessageDigestInstance}) is not redirected: the JDK digests cannot load
 * an intermediate state, so {@code setInitialDigest} stays jCardSim's.
 */
public final class DigestFactory {
    /** The system property that sets the default of the switch ({@code true} unless "false"). */
    public static final String PROPERTY = "simkit.fastDigest";

    private DigestFactory() {
    }

    /** The switch's default for new cards: on unless {@value #PROPERTY} is {@code false}. */
    public static boolean enabledByDefault() {
        return !"false".equalsIgnoreCase(System.getProperty(PROPERTY, "true").trim());
    }

    /** Same contract as {@code MessageDigest.getInstance(algorithm, externalAccess)}. */
    public static MessageDigest getInstance(byte algorithm, boolean externalAccess) {
        String name = externalAccess ? null : jdkName(algorithm);
        if (name != null) {
            try {
                return new JdkMessageDigest(algorithm, name);
            } catch (NoSuchAlgorithmException e) {
                // A JDK without this digest: jCardSim's implementation still works.
            }
        }
        return MessageDigest.getInstance(algorithm, externalAccess);
    }

    /** The JDK name of a Java Card digest algorithm that the JDK implements, else null. */
    static String jdkName(byte algorithm) {
        return switch (algorithm) {
            case MessageDigest.ALG_SHA -> "SHA-1";
            case MessageDigest.ALG_SHA_224 -> "SHA-224";
            case MessageDigest.ALG_SHA_256 -> "SHA-256";
            case MessageDigest.ALG_SHA_384 -> "SHA-384";
            case MessageDigest.ALG_SHA_512 -> "SHA-512";
            default -> null;
        };
    }
}
