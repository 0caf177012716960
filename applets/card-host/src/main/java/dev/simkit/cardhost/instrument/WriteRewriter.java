package dev.simkit.cardhost.instrument;

import java.util.Set;
import java.util.function.BooleanSupplier;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

/**
 * The instruction-level rewrite (one method). See the README for the design discussion.
 *
 * <pre>
 * xASTORE                     -> INVOKESTATIC WriteHook.xastore(array, index, value)   (hook stores)
 *
 * PUTFIELD  o.f (cat. 1)      stack: o v
 *   DUP2                      o v o v
 *   SWAP                      o v v o
 *   DUP_X1                    o v o v o
 *   GETFIELD f                o v o v old
 *   SWAP                      o v o old v
 *   LDC id                    o v o old v id
 *   INVOKESTATIC putField*    o v          (counts, logs old, maybe tears)
 *   PUTFIELD f                             (the original store)
 *
 * PUTSTATIC f (cat. 1)        stack: v
 *   DUP; GETSTATIC f; SWAP    v old v
 *   LDC id; INVOKESTATIC putStatic*; PUTSTATIC f
 *
 * PUTFIELD/PUTSTATIC of long/double -> LDC id; INVOKESTATIC putField[J|D]/putStatic[J|D] (hook stores)
 *
 * INVOKESTATIC javacard/framework/Util.{arrayCopy,arrayCopyNonAtomic,arrayFillNonAtomic,arrayFill,setShort}
 * INVOKESTATIC javacardx/framework/util/intx/JCint.{setInt,makeTransientIntArray}
 *                             -> same name and descriptor on WriteHook
 *
 * INVOKESTATIC javacard/security/MessageDigest.getInstance(BZ)   (only when scope.fastDigest())
 *                             -> DigestFactory.getInstance, same descriptor
 * </pre>
 *
 * The field rewrite keeps the real PUTFIELD so the common path has no reflection; the hook only
 * needs the old value (for the undo log) and the new one (to store it itself when a tear fires
 * right after this write, because then control never comes back to the PUTFIELD).
 */
final class WriteRewriter extends MethodVisitor {
    static final String HOOK = "dev/simkit/cardhost/runtime/WriteHook";
    private static final String UTIL = "javacard/framework/Util";
    private static final String JCINT = "javacardx/framework/util/intx/JCint";
    static final String DIGEST_FACTORY = "dev/simkit/cardhost/runtime/DigestFactory";
    private static final String MESSAGE_DIGEST = "javacard/security/MessageDigest";
    private static final String GET_INSTANCE = "getInstance";
    private static final String GET_INSTANCE_DESC = "(BZ)Ljavacard/security/MessageDigest;";
    private static final Set<String> UTIL_HOOKED = Set.of(
            "arrayCopy([BS[BSS)S",
            "arrayCopyNonAtomic([BS[BSS)S",
            "arrayFillNonAtomic([BSSB)S",
            "arrayFill([BSSB)S",
            "setShort([BSS)S");
    private static final Set<String> JCINT_HOOKED = Set.of(
            "setInt([BSI)S",
            "makeTransientIntArray(SB)[I");

    private final AppletScope scope;
    private final BooleanSupplier thisReady;

    WriteRewriter(MethodVisitor next, AppletScope scope, BooleanSupplier thisReady) {
        super(Opcodes.ASM9, next);
        this.scope = scope;
        this.thisReady = thisReady;
    }

    @Override
    public void visitInsn(int opcode) {
        switch (opcode) {
            case Opcodes.BASTORE -> hook("bastore", "(Ljava/lang/Object;II)V");
            case Opcodes.SASTORE -> hook("sastore", "([SII)V");
            case Opcodes.CASTORE -> hook("castore", "([CII)V");
            case Opcodes.IASTORE -> hook("iastore", "([III)V");
            case Opcodes.LASTORE -> hook("lastore", "([JIJ)V");
            case Opcodes.FASTORE -> hook("fastore", "([FIF)V");
            case Opcodes.DASTORE -> hook("dastore", "([DID)V");
            case Opcodes.AASTORE -> hook("aastore", "([Ljava/lang/Object;ILjava/lang/Object;)V");
            default -> super.visitInsn(opcode);
        }
    }

    @Override
    public void visitFieldInsn(int opcode, String owner, String name, String desc) {
        if (opcode == Opcodes.PUTFIELD && scope.isAppletInternalName(owner) && thisReady.getAsBoolean()) {
            putField(owner, name, desc);
        } else if (opcode == Opcodes.PUTSTATIC && scope.isAppletInternalName(owner)) {
            putStatic(owner, name, desc);
        } else {
            super.visitFieldInsn(opcode, owner, name, desc);
        }
    }

    @Override
    public void visitMethodInsn(int opcode, String owner, String name, String desc, boolean isInterface) {
        if (opcode == Opcodes.INVOKESTATIC
                && ((owner.equals(UTIL) && UTIL_HOOKED.contains(name + desc))
                        || (owner.equals(JCINT) && JCINT_HOOKED.contains(name + desc)))) {
            super.visitMethodInsn(Opcodes.INVOKESTATIC, HOOK, name, desc, false);
        } else if (opcode == Opcodes.INVOKESTATIC && scope.fastDigest() && owner.equals(MESSAGE_DIGEST)
                && name.equals(GET_INSTANCE) && desc.equals(GET_INSTANCE_DESC)) {
            super.visitMethodInsn(Opcodes.INVOKESTATIC, DIGEST_FACTORY, name, desc, false);
        } else {
            super.visitMethodInsn(opcode, owner, name, desc, isInterface);
        }
    }

    private void putField(String owner, String name, String desc) {
        int id = scope.fieldId(owner, name, desc);
        char t = desc.charAt(0);
        if (t == 'J' || t == 'D') {
            super.visitLdcInsn(id);
            hook("putField" + t, "(Ljava/lang/Object;" + t + "I)V");
            return;
        }
        String v = hookValueType(t);
        super.visitInsn(Opcodes.DUP2);
        super.visitInsn(Opcodes.SWAP);
        super.visitInsn(Opcodes.DUP_X1);
        super.visitFieldInsn(Opcodes.GETFIELD, owner, name, desc);
        super.visitInsn(Opcodes.SWAP);
        super.visitLdcInsn(id);
        hook("putField" + hookSuffix(t), "(Ljava/lang/Object;" + v + v + "I)V");
        super.visitFieldInsn(Opcodes.PUTFIELD, owner, name, desc);
    }

    private void putStatic(String owner, String name, String desc) {
        int id = scope.fieldId(owner, name, desc);
        char t = desc.charAt(0);
        if (t == 'J' || t == 'D') {
            super.visitLdcInsn(id);
            hook("putStatic" + t, "(" + t + "I)V");
            return;
        }
        String v = hookValueType(t);
        super.visitInsn(Opcodes.DUP);
        super.visitFieldInsn(Opcodes.GETSTATIC, owner, name, desc);
        super.visitInsn(Opcodes.SWAP);
        super.visitLdcInsn(id);
        hook("putStatic" + hookSuffix(t), "(" + v + v + "I)V");
        super.visitFieldInsn(Opcodes.PUTSTATIC, owner, name, desc);
    }

    /** Z B C S I travel as int on the operand stack; F as float; everything else is a reference. */
    private static String hookValueType(char t) {
        return switch (t) {
            case 'Z', 'B', 'C', 'S', 'I' -> "I";
            case 'F' -> "F";
            default -> "Ljava/lang/Object;";
        };
    }

    private static String hookSuffix(char t) {
        return switch (t) {
            case 'Z', 'B', 'C', 'S', 'I' -> "";
            case 'F' -> "F";
            default -> "A";
        };
    }

    private void hook(String name, String desc) {
        super.visitMethodInsn(Opcodes.INVOKESTATIC, HOOK, name, desc, false);
    }
}
