package dev.simkit.cardhost.bench;

import com.licel.jcardsim.bouncycastle.crypto.engines.AESEngine;
import com.licel.jcardsim.bouncycastle.crypto.macs.CMac;
import com.licel.jcardsim.bouncycastle.crypto.params.KeyParameter;
import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.Hex;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * Benchmark fixtures for the credit module (applet-spec/credit-module.md), aes-cmac profile:
 * cards personalised with fixed keys, and the server's side of a reload round (request
 * prediction, grants) computed with jCardSim's bundled BouncyCastle CMAC.
 */
final class CreditCards {
    static final byte[] AID = Hex.parse("F053494D4B49540101");
    static final String CLASS = "dev.simkit.credit.CreditModule";
    static final byte[] ID = Hex.parse("0102030405060708");
    static final byte[] K_REQ = Hex.parse("000102030405060708090A0B0C0D0E0F");
    static final byte[] K_GRANT = Hex.parse("101112131415161718191A1B1C1D1E1F");
    static final int MAX_I32 = Integer.MAX_VALUE;

    private CreditCards() {
    }

    /** Selected, personalised (m 1, M U L as given, balance, N 0, threshold 5) and locked. */
    static Card operational(int upper, int balance) {
        Card card = new Card(0, true, new java.net.URL[0], CreditCards.class.getClassLoader());
        card.install(new AppletSpec(AID, CLASS, new byte[0]));
        ok(card, cat(Hex.parse("00A40400"), new byte[] {(byte) AID.length}, AID));
        byte[] tlv = cat(tlv(0x81, ID), tlv(0x82, new byte[] {1}), tlv(0x83, K_REQ), tlv(0x84, K_GRANT),
                tlv(0x85, cat(u32(1), u32(MAX_I32), u32(upper), u32(0))),
                tlv(0x86, cat(u32(balance), u32(0))), tlv(0x87, new byte[] {0, 5}));
        ok(card, cat(Hex.parse("80500000"), new byte[] {(byte) tlv.length}, tlv));
        ok(card, Hex.parse("805E0000"));
        return card;
    }

    static byte[] initiate(long r) {
        return cat(Hex.parse("8020000004"), u32(r), new byte[] {0x1F});
    }

    static byte[] applyGrant(byte[] grant) {
        return cat(Hex.parse("8022000025"), grant, new byte[] {0x28});
    }

    /** The request the module builds for {N, R, B} (§3.2). */
    static byte[] request(long n, long r, int b) {
        return seal(K_REQ, cat(header(1), u32(n), u32(r), u32(b)));
    }

    /** A granted grant of G for {@code request} (§3.3). */
    static byte[] grant(byte[] request, long g) {
        long n = ByteBuffer.wrap(request, 11, 4).getInt() & 0xFFFFFFFFL;
        return seal(K_GRANT, cat(header(2), u32(n + 1), new byte[] {0, 0}, u32(g),
                Arrays.copyOfRange(request, 23, 31)));
    }

    private static byte[] header(int type) {
        return cat(new byte[] {1, (byte) type, 1}, ID);
    }

    private static byte[] seal(byte[] key, byte[] body) {
        CMac mac = new CMac(new AESEngine());
        mac.init(new KeyParameter(key));
        mac.update(body, 0, body.length);
        byte[] out = new byte[16];
        mac.doFinal(out, 0);
        return cat(body, Arrays.copyOf(out, 8));
    }

    static byte[] ok(Card card, byte[] apdu) {
        Card.Result r = card.transmit(apdu);
        byte[] resp = r.response();
        if (r.outcome() != Card.Outcome.OK || resp.length < 2
                || resp[resp.length - 2] != (byte) 0x90 || resp[resp.length - 1] != 0) {
            throw new IllegalStateException(Hex.of(apdu) + " -> " + r.outcome() + " " + Hex.of(resp));
        }
        return Arrays.copyOf(resp, resp.length - 2);
    }

    static byte[] tlv(int tag, byte[] value) {
        return cat(new byte[] {(byte) tag, (byte) value.length}, value);
    }

    static byte[] u32(long v) {
        return new byte[] {(byte) (v >>> 24), (byte) (v >>> 16), (byte) (v >>> 8), (byte) v};
    }

    static byte[] cat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            out.writeBytes(p);
        }
        return out.toByteArray();
    }
}
