package dev.simkit.cardhost.runtime;

import static dev.simkit.cardhost.TestCards.cmd;
import static dev.simkit.cardhost.TestCards.okData;
import static dev.simkit.cardhost.TestCards.selectOk;
import static dev.simkit.cardhost.TestCards.sw;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.licel.jcardsim.crypto.MessageDigestImpl;
import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import dev.simkit.cardhost.testapplets.digest.DigestApplet;
import java.lang.reflect.Field;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Random;
import javacard.framework.AID;
import javacard.security.MessageDigest;
import org.junit.jupiter.api.Test;

/** The digest switch seen from inside a card: which implementation applets get, and that it works. */
class FastDigestCardTest {
    private static final byte[] AID_BYTES = Hex.parse("F0534D4B4954E4");
    private static final String DIGEST = "dev.simkit.cardhost.testapplets.digest.DigestApplet";
    private static final byte[] BACKUP_AID = Hex.parse("F053494D4B49540201");

    private static Card card(boolean fast) {
        Card card = new Card(0, true, new URL[0], FastDigestCardTest.class.getClassLoader(), List.of(), fast);
        card.install(new AppletSpec(AID_BYTES, DIGEST, new byte[0]));
        selectOk(card, AID_BYTES);
        return card;
    }

    private static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    @Test
    void appletsGetTheJdkDigestWhenOnAndJcardsimsWhenOff() {
        assertEquals(JdkMessageDigest.class.getName(), text(okData(card(true), cmd(DigestApplet.INS_IMPL, 0, 0))));
        assertEquals(MessageDigestImpl.class.getName(), text(okData(card(false), cmd(DigestApplet.INS_IMPL, 0, 0))));
    }

    @Test
    void theDefaultIsOn() {
        // The suite runs without -Dsimkit.fastDigest; a card built without the flag is fast.
        assertEquals(true, DigestFactory.enabledByDefault());
        Card card = new Card(0, true, new URL[0], FastDigestCardTest.class.getClassLoader());
        assertEquals(true, card.fastDigest());
        card.install(new AppletSpec(AID_BYTES, DIGEST, new byte[0]));
        selectOk(card, AID_BYTES);
        assertEquals(JdkMessageDigest.class.getName(), text(okData(card, cmd(DigestApplet.INS_IMPL, 0, 0))));
    }

    @Test
    void bothImplementationsHashAlikeInsideTheCard() throws Exception {
        Random rnd = new Random(7);
        Card fast = card(true);
        Card slow = card(false);
        for (int n : new int[] {0, 1, 55, 56, 63, 64, 65, 200, 255}) {
            byte[] data = new byte[n];
            rnd.nextBytes(data);
            byte[] want = java.security.MessageDigest.getInstance("SHA-256").digest(data);
            byte[] apdu = n == 0 ? cmd(DigestApplet.INS_HASH, 0, 0) : cmd(DigestApplet.INS_HASH, 0, 0, data);
            assertArrayEquals(want, okData(fast, apdu), "fast, " + n + " bytes");
            assertArrayEquals(want, okData(slow, apdu), "jCardSim, " + n + " bytes");
        }
    }

    @Test
    void getInstanceAtRunTimeFollowsTheSwitchAndKeepsJcardsimsErrors() {
        for (boolean on : new boolean[] {true, false}) {
            Card card = card(on);
            String sha1 = text(okData(card, cmd(DigestApplet.INS_GET_INSTANCE, MessageDigest.ALG_SHA, 0)));
            assertEquals(on ? JdkMessageDigest.class.getName() : MessageDigestImpl.class.getName(), sha1);
            // MD5 is never redirected.
            assertEquals(MessageDigestImpl.class.getName(),
                    text(okData(card, cmd(DigestApplet.INS_GET_INSTANCE, MessageDigest.ALG_MD5, 0))));
            // NO_SUCH_ALGORITHM (3) for external access and for unknown algorithms, either way.
            assertEquals("6A03", sw(card.transmit(cmd(DigestApplet.INS_GET_INSTANCE, MessageDigest.ALG_SHA_256, 1))
                    .response()));
            assertEquals("6A03", sw(card.transmit(cmd(DigestApplet.INS_GET_INSTANCE, 99, 0)).response()));
        }
    }

    @Test
    void digestOutputIsLibraryWriteNotCountedEitherWay() throws Exception {
        // jCardSim's digest writes its output without the write hook; the JDK one must too, so
        // write counts and tear walks do not depend on the switch.
        byte[] data = "abc".getBytes(StandardCharsets.US_ASCII);
        for (boolean on : new boolean[] {true, false}) {
            Card card = card(on);
            okData(card, cmd(DigestApplet.INS_HASH_PERSISTENT, 0, 0, data));
            assertEquals(0, card.lastWriteCount(), "fast=" + on);
            Object applet = card.runtime().lookupApplet(new AID(AID_BYTES, (short) 0, (byte) AID_BYTES.length)).getApplet();
            Field last = applet.getClass().getDeclaredField("last");
            last.setAccessible(true);
            assertArrayEquals(java.security.MessageDigest.getInstance("SHA-256").digest(data), (byte[]) last.get(applet));
        }
    }

    @Test
    void theBackupStoreGetsTheFastDigest() throws Exception {
        for (boolean on : new boolean[] {true, false}) {
            Card card = new Card(0, true, new URL[0], FastDigestCardTest.class.getClassLoader(), List.of(), on);
            card.install(new AppletSpec(BACKUP_AID, "dev.simkit.backup.BackupStore", Hex.parse("0010000000800503")));
            Object applet = card.runtime().lookupApplet(new AID(BACKUP_AID, (short) 0, (byte) BACKUP_AID.length)).getApplet();
            int digests = 0;
            for (Field f : applet.getClass().getDeclaredFields()) {
                if (MessageDigest.class.isAssignableFrom(f.getType())) {
                    f.setAccessible(true);
                    assertEquals(on ? JdkMessageDigest.class : MessageDigestImpl.class, f.get(applet).getClass(), f.getName());
                    digests++;
                }
            }
            assertEquals(2, digests, "BackupStore's sha and tableSha");
        }
    }
}
