package dev.simkit.cardhost.runtime;

import java.lang.reflect.Field;
import java.util.Arrays;

/**
 * Maps the small integer field ids baked into rewritten bytecode back to fields.
 *
 * <p>The instrumenter registers every field that rewritten code stores to, once per card class
 * loader (the same class name in two cards is two different classes). The hot path never
 * touches this registry: a field store's old value is read by plain GETFIELD bytecode and
 * handed to the hook. Reflection is used only to restore values on rollback and for the one
 * store that coincides with a tear, and the {@link Field} is cached after its first use.
 */
public final class FieldRegistry {
    private static final Object LOCK = new Object();
    private static volatile FieldRef[] refs = new FieldRef[64];
    private static int count;

    private FieldRegistry() {
    }

    /**
     * Registers a field and returns its id.
     *
     * @param loader the loader that defines {@code ownerInternalName}
     * @param ownerInternalName the class named by the PUTFIELD/PUTSTATIC instruction
     * @param name field name
     * @param desc field descriptor
     */
    public static int register(ClassLoader loader, String ownerInternalName, String name, String desc) {
        synchronized (LOCK) {
            FieldRef[] r = refs;
            if (count == r.length) {
                r = Arrays.copyOf(r, count * 2);
            }
            r[count] = new FieldRef(loader, ownerInternalName.replace('/', '.'), name, desc.charAt(0));
            refs = r;
            return count++;
        }
    }

    static FieldRef get(int id) {
        return refs[id];
    }

    /** One registered field; resolves lazily because registration happens while its class is being defined. */
    static final class FieldRef {
        private final ClassLoader loader;
        private final String className;
        private final String name;
        /** First descriptor char: Z B C S I J F D, or L / [ for references. */
        private final char type;
        private volatile Field field;

        FieldRef(ClassLoader loader, String className, String name, char type) {
            this.loader = loader;
            this.className = className;
            this.name = name;
            this.type = type;
        }

        /** Stores a value given in the undo log's encoding (see {@link UndoLog#bitsOf}). */
        void store(Object owner, long bits, Object ref) {
            Field f = resolve();
            try {
                switch (type) {
                    case 'Z' -> f.setBoolean(owner, bits != 0);
                    case 'B' -> f.setByte(owner, (byte) bits);
                    case 'C' -> f.setChar(owner, (char) bits);
                    case 'S' -> f.setShort(owner, (short) bits);
                    case 'I' -> f.setInt(owner, (int) bits);
                    case 'J' -> f.setLong(owner, bits);
                    case 'F' -> f.setFloat(owner, Float.intBitsToFloat((int) bits));
                    case 'D' -> f.setDouble(owner, Double.longBitsToDouble(bits));
                    default -> f.set(owner, ref);
                }
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("cannot restore " + this, e);
            }
        }

        long getLong(Object owner) {
            try {
                return resolve().getLong(owner);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("cannot read " + this, e);
            }
        }

        double getDouble(Object owner) {
            try {
                return resolve().getDouble(owner);
            } catch (IllegalAccessException e) {
                throw new IllegalStateException("cannot read " + this, e);
            }
        }

        private Field resolve() {
            Field f = field;
            if (f == null) {
                f = lookup();
                field = f;
            }
            return f;
        }

        private Field lookup() {
            try {
                // JVM field resolution starts at the class named in the instruction and walks up.
                for (Class<?> c = Class.forName(className, false, loader); c != null; c = c.getSuperclass()) {
                    try {
                        Field f = c.getDeclaredField(name);
                        f.setAccessible(true);
                        return f;
                    } catch (NoSuchFieldException e) {
                        // keep walking up
                    }
                }
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException("cannot load " + className, e);
            }
            throw new IllegalStateException("no field " + this);
        }

        @Override
        public String toString() {
            return className + "." + name;
        }
    }
}
