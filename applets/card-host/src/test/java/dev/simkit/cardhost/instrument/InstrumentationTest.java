package dev.simkit.cardhost.instrument;

import static dev.simkit.cardhost.TestCards.SINK;
import static dev.simkit.cardhost.TestCards.SINK_AID;
import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.okData;
import static dev.simkit.cardhost.TestCards.selectOk;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.TestCards;
import dev.simkit.cardhost.testapplets.sink.SinkApplet;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javacard.framework.AID;
import org.junit.jupiter.api.Test;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.util.CheckClassAdapter;

/** The class rewriting itself: every store kind, statics per card, bytecode validity. */
class InstrumentationTest {

    private static Card sinkCard(boolean rollback) {
        Card card = TestCards.newCard(rollback);
        card.install(new AppletSpec(SINK_AID, SINK, new byte[0]));
        selectOk(card, SINK_AID);
        return card;
    }

    private static Object applet(Card card) {
        return card.runtime().lookupApplet(new AID(SINK_AID, (short) 0, (byte) SINK_AID.length)).getApplet();
    }

    /** Fields that mutate() does not touch. */
    private static final List<String> UNTOUCHED = List.of("inner", "transientInts", "inner.this$0", "cell");

    /**
     * Every field that mutate() writes (static and instance, applet and inner object), arrays
     * by content, references by identity: one entry per persistent write of mutate().
     */
    private static List<String> snapshot(Object applet) throws Exception {
        List<String> out = new ArrayList<>();
        Object inner = null;
        for (Field f : applet.getClass().getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers()) && Modifier.isFinal(f.getModifiers())) {
                continue; // constants
            }
            f.setAccessible(true);
            Object v = f.get(Modifier.isStatic(f.getModifiers()) ? null : applet);
            if (f.getName().equals("inner")) {
                inner = v;
            }
            if (!UNTOUCHED.contains(f.getName())) {
                out.add(f.getName() + "=" + describe(v));
            }
        }
        for (Field f : inner.getClass().getDeclaredFields()) {
            f.setAccessible(true);
            if (!UNTOUCHED.contains("inner." + f.getName())) {
                out.add("inner." + f.getName() + "=" + describe(f.get(inner)));
            }
        }
        assertEquals(SinkApplet.MUTATE_WRITES, out.size(), "one entry per write of mutate()");
        return out;
    }

    private static String describe(Object v) {
        if (v == null) {
            return "null";
        }
        if (v.getClass().isArray()) {
            if (v instanceof Object[] a) {
                return Arrays.stream(a).map(x -> x == null ? "null" : "@" + System.identityHashCode(x)).toList().toString();
            }
            List<String> items = new ArrayList<>();
            for (int i = 0; i < java.lang.reflect.Array.getLength(v); i++) {
                items.add(String.valueOf(java.lang.reflect.Array.get(v, i)));
            }
            return items.toString();
        }
        if (v instanceof Number || v instanceof Boolean || v instanceof Character) {
            return v.toString();
        }
        return "@" + System.identityHashCode(v);
    }

    @Test
    void everyStoreKindIsCountedAndRolledBack() throws Exception {
        Card card = sinkCard(true);
        Object applet = applet(card);
        List<String> before = snapshot(applet);
        okData(card, cmd(SinkApplet.INS_MUTATE_TXN, 1, 0)); // abort
        assertEquals(SinkApplet.MUTATE_WRITES, card.lastWriteCount());
        assertEquals(before, snapshot(applet));
        okData(card, cmd(SinkApplet.INS_MUTATE_TXN, 0, 0)); // commit
        List<String> after = snapshot(applet);
        for (int i = 0; i < before.size(); i++) {
            assertNotEquals(before.get(i), after.get(i), "commit changed " + before.get(i));
        }
    }

    @Test
    void everyStoreKindCanBeTornAndRolledBack() throws Exception {
        Card card = sinkCard(true);
        Object applet = applet(card);
        for (int k = 1; k <= SinkApplet.MUTATE_WRITES; k++) {
            List<String> before = snapshot(applet);
            card.armTear(k);
            assertEquals(Card.Outcome.POWER_LOST, card.transmit(cmd(SinkApplet.INS_MUTATE_TXN, 0, 0)).outcome());
            assertEquals(before, snapshot(applet), "k=" + k);
            selectOk(card, SINK_AID);
        }
    }

    @Test
    void tearWithoutTransactionKeepsExactlyTheFirstKWrites() throws Exception {
        assertEquals(SinkApplet.MUTATE_WRITES, snapshot(applet(sinkCard(true))).size());
        // The store that coincides with the tear must land (power is cut *after* write k),
        // including field stores, where the hook has to perform the store itself.
        for (int k = 1; k <= SinkApplet.MUTATE_WRITES; k++) {
            Card card = sinkCard(true);
            Object applet = applet(card);
            List<String> before = snapshot(applet);
            card.armTear(k);
            assertEquals(Card.Outcome.POWER_LOST, card.transmit(cmd(SinkApplet.INS_MUTATE, 0, 0)).outcome());
            List<String> after = snapshot(applet);
            int changed = 0;
            for (int i = 0; i < before.size(); i++) {
                changed += before.get(i).equals(after.get(i)) ? 0 : 1;
            }
            // mutate() writes 23 distinct locations once each: exactly the first k must have changed.
            assertEquals(k, changed, "k=" + k + ": writes 1..k landed, none after");
        }
    }

    @Test
    void staticsArePerCard() {
        Card a = sinkCard(true);
        Card b = sinkCard(true);
        okData(a, cmd(SinkApplet.INS_HIT, 0, 0));
        okData(a, cmd(SinkApplet.INS_HIT, 0, 0));
        assertArrayEquals(new byte[] {0, 3}, okData(a, cmd(SinkApplet.INS_HIT, 0, 0)));
        assertArrayEquals(new byte[] {0, 1}, okData(b, cmd(SinkApplet.INS_HIT, 0, 0)));
        assertNotSame(applet(a).getClass(), applet(b).getClass());
        assertNotSame(SinkApplet.class, applet(a).getClass(), "the host's own copy is never used");
    }

    @Test
    void jcintSetIntIsImplementedAndAtomic() throws Exception {
        Card card = sinkCard(true);
        Object applet = applet(card);
        Field bytes = applet.getClass().getDeclaredField("bytes");
        bytes.setAccessible(true);
        okData(card, cmd(SinkApplet.INS_SET_INT, 1, 0)); // aborted
        assertArrayEquals(new byte[4], (byte[]) bytes.get(applet));
        for (int k = 1; k <= 4; k++) {
            card.armTear(k);
            assertEquals(Card.Outcome.POWER_LOST, card.transmit(cmd(SinkApplet.INS_SET_INT, 0, 0)).outcome());
            assertArrayEquals(new byte[4], (byte[]) bytes.get(applet), "k=" + k);
            selectOk(card, SINK_AID);
        }
        okData(card, cmd(SinkApplet.INS_SET_INT, 0, 0));
        assertArrayEquals(new byte[] {1, 2, 3, 4}, (byte[]) bytes.get(applet));
    }

    @Test
    void transientIntArraysWork() throws Exception {
        Card card = sinkCard(true);
        okData(card, cmd(SinkApplet.INS_TRANSIENT_INT, 0, 0));
        assertEquals(1, card.lastWriteCount(), "only the field store is persistent");
        Object applet = applet(card);
        Field f = applet.getClass().getDeclaredField("transientInts");
        f.setAccessible(true);
        assertArrayEquals(new int[] {42, 43}, (int[]) f.get(applet));
        card.reset();
        assertArrayEquals(new int[] {0, 0}, (int[]) f.get(applet));
    }

    @Test
    void rewrittenClassesPassAsmVerification() throws Exception {
        CardClassLoader loader = new CardClassLoader("verify", new URL[0], getClass().getClassLoader());
        for (String cls : List.of(SINK, SINK + "$Inner", TestCards.COUNTER, TestCards.ECHO)) {
            loader.loadAppletClass(cls); // declares the package
            byte[] original;
            try (InputStream in = getClass().getClassLoader().getResourceAsStream(cls.replace('.', '/') + ".class")) {
                original = in.readAllBytes();
            }
            StringWriter problems = new StringWriter();
            CheckClassAdapter.verify(new ClassReader(loader.rewrite(original)), loader, false, new PrintWriter(problems));
            assertEquals("", problems.toString(), cls);
        }
    }

    @Test
    void helperPackagesAreRewrittenOnlyWhenDeclared() throws Exception {
        for (boolean declared : new boolean[] {false, true}) {
            Card card = new Card(0, true, new URL[0], getClass().getClassLoader(),
                    declared ? List.of("dev.simkit.cardhost.testapplets.helper") : List.of());
            card.install(new AppletSpec(SINK_AID, SINK, new byte[0]));
            selectOk(card, SINK_AID);
            okData(card, cmd(SinkApplet.INS_HELPER_ABORT, 0, 0));
            Object applet = applet(card);
            Field f = applet.getClass().getDeclaredField("cell");
            f.setAccessible(true);
            Object cell = f.get(applet);
            short value = (short) cell.getClass().getMethod("get").invoke(cell);
            // Undeclared, the helper's write is invisible to the runtime and survives the abort.
            assertEquals(declared ? 0 : 5, value, "declared=" + declared);
            assertEquals(declared ? 1 : 0, card.lastWriteCount());
        }
    }

    @Test
    void hostAndPlatformPackagesCannotBeApplets() {
        CardClassLoader loader = new CardClassLoader("x", new URL[0], getClass().getClassLoader());
        assertThrows(ClassNotFoundException.class, () -> loader.loadAppletClass("javacard.framework.Applet"));
        assertThrows(ClassNotFoundException.class, () -> loader.loadAppletClass("dev.simkit.cardhost.runtime.WriteHook"));
        assertThrows(ClassNotFoundException.class, () -> loader.loadAppletClass("dev.simkit.cardhost.Main"));
        assertThrows(IllegalArgumentException.class, () -> loader.addAppletPackage("java.lang"));
        assertThrows(IllegalArgumentException.class, () -> loader.addAppletPackage("javacard"));
    }
}
