package dev.simkit.testkit;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

/**
 * A guard in place of the Java Card converter (which no registry serves): reads applet class
 * files and lists what a Java Card 3.0.5 card could not run. Shared by the applet modules' tests.
 */
public final class JavaCardSubset {

    private JavaCardSubset() {}

    /** Constant-pool view of one class file: referenced class names, descriptors, wide constants. */
    private static final class Pool {
        final List<String> classes = new ArrayList<>();
        final List<String> descriptors = new ArrayList<>();
        final List<String> wide = new ArrayList<>();
        final List<String> members = new ArrayList<>();
    }

    /**
     * Methods jCardSim's API classes have but the Java Card 3.0.5 API does not (jCardSim declares
     * {@code Util.arrayFill} native: calling it fails at run time).
     */
    private static final java.util.Set<String> NOT_IN_3_0_5 = java.util.Set.of("arrayFill");

    private static Pool read(Class<?> c) throws IOException {
        String file = "/" + c.getName().replace('.', '/') + ".class";
        try (InputStream in = c.getResourceAsStream(file)) {
            if (in == null) {
                throw new IOException("class file " + file + " not found");
            }
            DataInputStream d = new DataInputStream(in);
            if (d.readInt() != 0xCAFEBABE) {
                throw new IOException(c.getName() + " is not a class file");
            }
            d.readUnsignedShort();
            d.readUnsignedShort();
            int n = d.readUnsignedShort();
            String[] utf = new String[n];
            int[] classIdx = new int[n];
            List<Integer> nameAndTypeDesc = new ArrayList<>();
            List<Integer> nameAndTypeName = new ArrayList<>();
            Pool pool = new Pool();
            for (int i = 1; i < n; i++) {
                int tag = d.readUnsignedByte();
                switch (tag) {
                    case 1:
                        utf[i] = d.readUTF();
                        break;
                    case 3: {
                        int v = d.readInt();
                        if (v < Short.MIN_VALUE || v > 0xFFFF) {
                            pool.wide.add("int " + v);
                        }
                        break;
                    }
                    case 4:
                        d.readInt();
                        pool.wide.add("float");
                        break;
                    case 5:
                    case 6:
                        d.readLong();
                        pool.wide.add(tag == 5 ? "long" : "double");
                        i++;
                        break;
                    case 7:
                        classIdx[i] = d.readUnsignedShort();
                        break;
                    case 8:
                    case 16:
                    case 19:
                    case 20:
                        d.readUnsignedShort();
                        if (tag == 8) {
                            pool.wide.add("string constant");
                        }
                        break;
                    case 9:
                    case 10:
                    case 11:
                    case 17:
                    case 18:
                        d.readUnsignedShort();
                        d.readUnsignedShort();
                        if (tag >= 17) {
                            pool.wide.add("dynamic");
                        }
                        break;
                    case 12:
                        nameAndTypeName.add(d.readUnsignedShort());
                        nameAndTypeDesc.add(d.readUnsignedShort());
                        break;
                    case 15:
                        d.readUnsignedByte();
                        d.readUnsignedShort();
                        break;
                    default:
                        throw new IOException("constant pool tag " + tag);
                }
            }
            for (int i = 1; i < n; i++) {
                if (classIdx[i] != 0) {
                    pool.classes.add(utf[classIdx[i]]);
                }
            }
            for (int idx : nameAndTypeDesc) {
                pool.descriptors.add(utf[idx]);
            }
            for (int idx : nameAndTypeName) {
                pool.members.add(utf[idx]);
            }
            // Own fields and methods.
            d.readUnsignedShort();
            d.readUnsignedShort();
            d.readUnsignedShort();
            int ifaces = d.readUnsignedShort();
            for (int i = 0; i < ifaces; i++) {
                d.readUnsignedShort();
            }
            for (int kind = 0; kind < 2; kind++) {
                int count = d.readUnsignedShort();
                for (int i = 0; i < count; i++) {
                    d.readUnsignedShort();
                    d.readUnsignedShort();
                    pool.descriptors.add(utf[d.readUnsignedShort()]);
                    int attrs = d.readUnsignedShort();
                    for (int a = 0; a < attrs; a++) {
                        d.readUnsignedShort();
                        d.skipNBytes(d.readInt());
                    }
                }
            }
            return pool;
        }
    }

    /**
     * Every way the classes step outside what a Java Card 3.0.5 converter accepts: references to
     * classes other than the Java Card API, {@code java/lang/Object} and the applet's own package
     * ({@code ownPackage}, e.g. {@code "dev/simkit/credit/"}); int, long, float or double in any
     * field, parameter or result; 32-bit or wider, float or string constants; methods jCardSim has
     * but the 3.0.5 API lacks. Empty means the classes pass.
     */
    public static TreeSet<String> problems(String ownPackage, Class<?>... classes) throws IOException {
        TreeSet<String> problems = new TreeSet<>();
        for (Class<?> c : classes) {
            Pool p = read(c);
            for (String cls : p.classes) {
                String base = cls.replaceAll("^\\[+L?|;$", "");
                boolean ok = base.startsWith("javacard/") || base.startsWith("javacardx/")
                        || base.startsWith(ownPackage) || base.equals("java/lang/Object")
                        || base.matches("\\[*[BSZ]");
                if (!ok) {
                    problems.add(c.getSimpleName() + " references " + cls);
                }
            }
            for (String desc : p.descriptors) {
                String types = desc.replaceAll("L[^;]+;", "");
                if (types.matches(".*[IJFD].*")) {
                    problems.add(c.getSimpleName() + " declares or calls " + desc);
                }
            }
            for (String m : p.members) {
                if (NOT_IN_3_0_5.contains(m)) {
                    problems.add(c.getSimpleName() + " calls " + m + ", not in the Java Card 3.0.5 API");
                }
            }
            for (String w : p.wide) {
                problems.add(c.getSimpleName() + " has a " + w + " constant");
            }
        }
        return problems;
    }
}
