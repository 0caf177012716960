package dev.simkit.cardhost.instrument;

import dev.simkit.cardhost.runtime.DigestFactory;
import dev.simkit.cardhost.runtime.FieldRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One class loader per simulated card. Classes of the card's applet packages are loaded
 * child-first and rewritten by {@link AppletTransformer}; everything else (java.*, javacard.*,
 * com.licel.*, the host itself, and non-applet classes of an applet jar) is delegated normally.
 *
 * <p>Because each card defines its own copy of the applet classes, applet statics are per card,
 * as they are on real cards, even though all cards share one JVM.
 *
 * <p>Applet class bytes come from the {@code --applet-jar} URLs given to this loader first, then
 * from the parent (the host's classpath — in the shaded jar that includes the applet modules).
 */
public final class CardClassLoader extends URLClassLoader implements AppletScope {
    static {
        registerAsParallelCapable();
    }

    /** Package prefixes that must never be rewritten: the platform, the simulator, ASM. */
    private static final List<String> FORBIDDEN_PREFIXES = List.of(
            "java.", "javax.", "jdk.", "sun.", "javacard.", "javacardx.", "com.licel.", "org.objectweb.asm.");
    /** The host's own packages (its test applets are fine). */
    private static final Set<String> FORBIDDEN_PACKAGES = Set.of(
            "dev.simkit.cardhost", "dev.simkit.cardhost.runtime", "dev.simkit.cardhost.instrument",
            "dev.simkit.cardhost.server", "dev.simkit.cardhost.bench");

    private final Set<String> appletPackages = ConcurrentHashMap.newKeySet();
    private final Map<String, Integer> fieldIds = new ConcurrentHashMap<>();
    private final boolean fastDigest;

    /** A loader with the fast-digest switch at its default ({@code DigestFactory.enabledByDefault()}). */
    public CardClassLoader(String name, URL[] appletJars, ClassLoader parent) {
        this(name, appletJars, parent, DigestFactory.enabledByDefault());
    }

    /**
     * @param fastDigest redirect the applets' {@code MessageDigest.getInstance} calls to the
     *     JDK-backed {@code DigestFactory} (see {@link WriteRewriter})
     */
    public CardClassLoader(String name, URL[] appletJars, ClassLoader parent, boolean fastDigest) {
        super(name, appletJars, parent);
        this.fastDigest = fastDigest;
    }

    /**
     * Declares {@code className}'s package an applet package of this card (so its classes get
     * rewritten) and loads the class.
     */
    public Class<?> loadAppletClass(String className) throws ClassNotFoundException {
        int dot = className.lastIndexOf('.');
        try {
            addAppletPackage(dot < 0 ? "" : className.substring(0, dot));
        } catch (IllegalArgumentException e) {
            throw new ClassNotFoundException(e.getMessage());
        }
        return loadClass(className);
    }

    /**
     * Declares a package whose classes must be rewritten although no installed applet class
     * lives in it — e.g. a helper library shared by several applet packages. Must be called
     * before any class of the package is loaded through this loader.
     */
    public void addAppletPackage(String pkg) {
        if (FORBIDDEN_PACKAGES.contains(pkg) || FORBIDDEN_PREFIXES.stream().anyMatch((pkg + ".")::startsWith)) {
            throw new IllegalArgumentException("package '" + pkg + "' cannot hold applet code");
        }
        appletPackages.add(pkg);
    }

    public Set<String> appletPackages() {
        return Set.copyOf(appletPackages);
    }

    @Override
    public boolean isAppletInternalName(String internalName) {
        int slash = internalName.lastIndexOf('/');
        String pkg = slash < 0 ? "" : internalName.substring(0, slash).replace('/', '.');
        return appletPackages.contains(pkg);
    }

    @Override
    public boolean fastDigest() {
        return fastDigest;
    }

    @Override
    public int fieldId(String ownerInternalName, String name, String desc) {
        return fieldIds.computeIfAbsent(ownerInternalName + '.' + name + ':' + desc,
                k -> FieldRegistry.register(this, ownerInternalName, name, desc));
    }

    @Override
    protected Class<?> loadClass(String name, boolean resolve) throws ClassNotFoundException {
        if (!isAppletInternalName(name.replace('.', '/'))) {
            return super.loadClass(name, resolve);
        }
        synchronized (getClassLoadingLock(name)) {
            Class<?> c = findLoadedClass(name);
            if (c == null) {
                byte[] rewritten = AppletTransformer.transform(classBytes(name), this);
                c = defineClass(name, rewritten, 0, rewritten.length);
            }
            if (resolve) {
                resolveClass(c);
            }
            return c;
        }
    }

    /** Reads the original bytes: applet jars first, so a jar can override a classpath copy. */
    private byte[] classBytes(String name) throws ClassNotFoundException {
        String path = name.replace('.', '/') + ".class";
        URL url = findResource(path);
        if (url == null && getParent() != null) {
            url = getParent().getResource(path);
        }
        if (url == null) {
            throw new ClassNotFoundException(name);
        }
        try (InputStream in = url.openStream()) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new ClassNotFoundException(name, e);
        }
    }

    /** Rewrites class bytes as this loader would; for tests and diagnostics. */
    public byte[] rewrite(byte[] classBytes) {
        return AppletTransformer.transform(classBytes, this);
    }
}
