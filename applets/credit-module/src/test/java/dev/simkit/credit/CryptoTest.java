package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.util.Arrays;
import java.util.Random;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The applet's MAC engine ({@link Crypto}) against BouncyCastle and the published vectors: native
 * {@code ALG_AES_CMAC_128} and the AES-ECB fallback must give the same bytes.
 */
class CryptoTest {

    static final File PUBLISHED = new File(System.getProperty("simkit.published",
            "../../applet-spec/vectors/published.json"));

    static Crypto crypto(boolean nativeCmac) {
        return new Crypto(new Transients(), nativeCmac);
    }

    static byte[] sign(Crypto c, byte role, Host.Profile p, byte[] data) {
        byte[] tag = new byte[8];
        c.sign(role, (byte) p.id, data, (short) 0, (short) data.length, tag, (short) 0);
        return tag;
    }

    @Test
    void jcardsimHasNativeCmacAndTheFallbackCanBeForced() {
        assertEquals(Crypto.CMAC_NATIVE, crypto(true).cmacImplementation());
        assertEquals(Crypto.CMAC_FALLBACK, crypto(false).cmacImplementation());
        for (byte p = 1; p <= 3; p++) {
            assertTrue(crypto(true).supports(p));
            assertTrue(crypto(false).supports(p));
        }
        assertFalse(crypto(true).supports((byte) 0));
        assertFalse(crypto(true).supports((byte) 4));
    }

    @Test
    void rfc4493FullMacBothImplementations() throws Exception {
        JsonNode v = new ObjectMapper().readTree(PUBLISHED).get("aes_cmac");
        assertTrue(v.size() >= 4);
        for (boolean nativeCmac : new boolean[] {true, false}) {
            Transients t = new Transients();
            Crypto c = new Crypto(t, nativeCmac);
            for (JsonNode e : v) {
                byte[] key = Hex.b(e.get("key").asText());
                byte[] data = Hex.b(e.get("data").asText());
                byte[] mac = Hex.b(e.get("mac").asText());
                c.setKey(Crypto.ROLE_GRANT, (byte) 1, key, (short) 0);
                byte[] tag = new byte[8];
                c.sign(Crypto.ROLE_GRANT, (byte) 1, data, (short) 0, (short) data.length, tag, (short) 0);
                assertArrayEquals(Arrays.copyOf(mac, 8), tag, e.get("source").asText());
                assertArrayEquals(mac, Arrays.copyOfRange(t.buf, Transients.OFF_MAC_OUT, Transients.OFF_MAC_OUT + 16),
                        "full 16-byte CMAC, native=" + nativeCmac);
                assertArrayEquals(mac, Host.aesCmac(key, data), "BouncyCastle reference");
            }
        }
    }

    @Test
    void hostReferenceMatchesPublishedBlockVectors() throws Exception {
        JsonNode root = new ObjectMapper().readTree(PUBLISHED);
        for (JsonNode e : root.get("desx_ecb")) {
            byte[] key = Hex.cat(Hex.b(e.get("des_key").asText()), Hex.b(e.get("pre_whitening").asText()),
                    Hex.b(e.get("post_whitening").asText()));
            assertArrayEquals(Hex.b(e.get("ciphertext").asText()), Host.desx(key, Hex.b(e.get("plaintext").asText())));
        }
        for (JsonNode e : root.get("tdes_ecb")) {
            assertArrayEquals(Hex.b(e.get("ciphertext").asText()), Host.ecb(new org.bouncycastle.crypto.engines.DESedeEngine(),
                    Hex.b(e.get("key").asText()), Hex.b(e.get("plaintext").asText())));
        }
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void everyLengthAgreesWithBouncyCastle(Host.Profile p) {
        Random rnd = new Random(p.id);
        Crypto nat = crypto(true);
        Crypto fb = crypto(false);
        for (int round = 0; round < 8; round++) {
            byte[] kReq = new byte[p.keyLen];
            byte[] kGrant = new byte[p.keyLen];
            rnd.nextBytes(kReq);
            rnd.nextBytes(kGrant);
            for (Crypto c : new Crypto[] {nat, fb}) {
                c.setKey(Crypto.ROLE_REQ, (byte) p.id, kReq, (short) 0);
                c.setKey(Crypto.ROLE_GRANT, (byte) p.id, kGrant, (short) 0);
            }
            for (int len = 0; len <= 80; len++) {
                byte[] data = new byte[len];
                rnd.nextBytes(data);
                byte[] expectReq = Host.tag(p, kReq, data);
                byte[] expectGrant = Host.tag(p, kGrant, data);
                for (Crypto c : new Crypto[] {nat, fb}) {
                    assertArrayEquals(expectReq, sign(c, Crypto.ROLE_REQ, p, data), p + " req len " + len);
                    assertArrayEquals(expectGrant, sign(c, Crypto.ROLE_GRANT, p, data), p + " grant len " + len);
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Host.Profile.class)
    void verifyChecksAllEightBytes(Host.Profile p) {
        Crypto c = crypto(true);
        byte[] key = Host.fill(p.keyLen, 0x5A);
        c.setKey(Crypto.ROLE_GRANT, (byte) p.id, key, (short) 0);
        byte[] msg = Host.seal(p, key, Hex.b("0102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D"));
        short body = (short) (msg.length - 8);
        assertTrue(c.verify(Crypto.ROLE_GRANT, (byte) p.id, msg, (short) 0, body, msg, body));
        for (int i = 0; i < 8; i++) {
            for (int bit = 0; bit < 8; bit++) {
                byte[] f = msg.clone();
                f[body + i] ^= (byte) (1 << bit);
                assertFalse(c.verify(Crypto.ROLE_GRANT, (byte) p.id, f, (short) 0, body, f, body));
            }
        }
        // Keys are per role: the request key does not verify a grant. (Not the complement 0xA5:
        // DES's complementation property makes K and ~K equivalent under DES-X CBC-MAC.)
        c.setKey(Crypto.ROLE_REQ, (byte) p.id, Host.fill(p.keyLen, 0x33), (short) 0);
        assertFalse(c.verify(Crypto.ROLE_REQ, (byte) p.id, msg, (short) 0, body, msg, body));
    }

    @Test
    void paddingMethod2SeparatesMAndMZero() {
        // crypto.md §1: with method 1, m and m ‖ 00 would share a MAC.
        for (Host.Profile p : new Host.Profile[] {Host.Profile.RETAIL_MAC, Host.Profile.DESX_CBC}) {
            Crypto c = crypto(true);
            byte[] key = Host.fill(p.keyLen, 0x3C);
            c.setKey(Crypto.ROLE_REQ, (byte) p.id, key, (short) 0);
            byte[] m = Hex.b("01020304050607");
            assertFalse(Arrays.equals(sign(c, Crypto.ROLE_REQ, p, m), sign(c, Crypto.ROLE_REQ, p, Hex.cat(m, new byte[1]))));
        }
    }

    @Test
    void desxSpliceOfTwoMessagesIsRejectedByLengthOnTheCard() {
        // crypto.md §2: m1 ‖ 80 00… ‖ (m2 ⊕ t1) verifies under plain DES-X CBC-MAC; the card refuses
        // it because it is longer than any message of that type.
        Host.Profile p = Host.Profile.DESX_CBC;
        Module m = Module.operational(p);
        byte[] req = m.initiate(10);
        byte[] g1 = m.grantFor(req, 10);
        byte[] body1 = Arrays.copyOf(g1, 29);
        byte[] padded = Host.padM2(body1, 8); // 32 bytes
        byte[] t1 = Host.tagOf(g1);
        byte[] m2 = Arrays.copyOf(m.grantFor(req, 5), 29);
        byte[] spliceBody = Hex.cat(padded, Host.xor(Arrays.copyOf(m2, 8), t1), Arrays.copyOfRange(m2, 8, 29));
        byte[] spliced = Hex.cat(spliceBody, Host.tag(p, m.kGrant, m2));
        assertTrue(Host.verify(p, m.kGrant, spliced), "the splice forges a valid DES-X CBC-MAC");
        m.card.expect(0x6700, Card.applyGrant(spliced));
        assertEquals(0, m.badTags());
    }
}
