package dev.simkit.cardhost.instrument;

import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;
import org.objectweb.asm.commons.AdviceAdapter;

/**
 * Rewrites one applet class so that every persistent store goes through
 * {@code dev.simkit.cardhost.runtime.WriteHook} (see {@link WriteRewriter} for the exact rewrite).
 *
 * <p>Two kinds of code are left alone on purpose:
 * <ul>
 *   <li>{@code <clinit>}: on a card, static initialisers are run by the converter and their
 *       results are part of the loaded image, not writes made by a command;</li>
 *   <li>constructor code before the {@code super(...)}/{@code this(...)} call: {@code this} is
 *       still uninitialised there and may not be passed to a method (javac puts the outer
 *       instance of inner classes there). The object is brand new, so nothing needs restoring.</li>
 * </ul>
 */
final class AppletTransformer {
    private AppletTransformer() {
    }

    static byte[] transform(byte[] classBytes, AppletScope scope) {
        ClassReader reader = new ClassReader(classBytes);
        // COMPUTE_MAXS: we push up to three extra stack slots. We insert no branches and no
        // locals, so the existing stack map frames stay valid and COMPUTE_FRAMES (which would
        // need to load classes to find common supertypes) is not needed.
        ClassWriter writer = new ClassWriter(reader, ClassWriter.COMPUTE_MAXS);
        // EXPAND_FRAMES: AdviceAdapter (used on constructors) requires expanded frames.
        reader.accept(new Rewriter(writer, scope), ClassReader.EXPAND_FRAMES);
        return writer.toByteArray();
    }

    private static final class Rewriter extends ClassVisitor {
        private final AppletScope scope;

        Rewriter(ClassVisitor next, AppletScope scope) {
            super(Opcodes.ASM9, next);
            this.scope = scope;
        }

        @Override
        public MethodVisitor visitMethod(int access, String name, String desc, String signature, String[] exceptions) {
            MethodVisitor mv = super.visitMethod(access, name, desc, signature, exceptions);
            if (mv == null || name.equals("<clinit>")) {
                return mv;
            }
            if (!name.equals("<init>")) {
                return new WriteRewriter(mv, scope, () -> true);
            }
            // AdviceAdapter tracks the operand stack of a constructor and calls onMethodEnter()
            // right after the super()/this() call; from there on `this` may be passed around.
            ConstructorState state = new ConstructorState();
            WriteRewriter rewriter = new WriteRewriter(mv, scope, () -> state.thisReady);
            return new AdviceAdapter(Opcodes.ASM9, rewriter, access, name, desc) {
                @Override
                protected void onMethodEnter() {
                    state.thisReady = true;
                }
            };
        }
    }

    private static final class ConstructorState {
        boolean thisReady;
    }
}
