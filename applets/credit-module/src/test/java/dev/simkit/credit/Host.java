package dev.simkit.credit;

import dev.simkit.testkit.Hex;

import java.util.Arrays;

import org.bouncycastle.crypto.BlockCipher;
import org.bouncycastle.crypto.engines.AESEngine;
import org.bouncycastle.crypto.engines.DESEngine;
import org.bouncycastle.crypto.engines.DESedeEngine;
import org.bouncycastle.crypto.macs.CMac;
import org.bouncycastle.crypto.macs.ISO9797Alg3Mac;
import org.bouncycastle.crypto.paddings.ISO7816d4Padding;
import org.bouncycastle.crypto.params.KeyParameter;

/**
 * The host side of the protocol, written independently of the applet with BouncyCastle: crypto
 * profiles, key derivation and KCVs (crypto.md), and message layouts (credit-module.md §3).
 * Test code only. Public because the card host's tear-walk tests build messages with it (this
 * module's test-jar carries Host and Hex only).
 */
public final class Host {

    private Host() {
    }

    /** crypto.md profile table. */
    public enum Profile {
        AES_CMAC(1, "aes-cmac", 16, 16),
        RETAIL_MAC(2, "retail-mac", 16, 16),
        DESX_CBC(3, "desx-cbc", 24, 24);

        public final int id;
        public final String name;
        public final int keyLen;
        public final int masterLen;

        Profile(int id, String name, int keyLen, int masterLen) {
            this.id = id;
            this.name = name;
            this.keyLen = keyLen;
            this.masterLen = masterLen;
        }

        public static Profile byName(String name) {
            for (Profile p : values()) {
                if (p.name.equals(name)) {
                    return p;
                }
            }
            throw new IllegalArgumentException("unknown profile " + name);
        }
    }

    // ---- block primitives ----------------------------------------------------------------------

    public static byte[] ecb(BlockCipher c, byte[] key, byte[] in) {
        c.init(true, new KeyParameter(key));
        byte[] out = new byte[in.length];
        for (int i = 0; i < in.length; i += c.getBlockSize()) {
            c.processBlock(in, i, out, i);
        }
        return out;
    }

    /** DES-X with key DESKEY ‖ PRE ‖ POST (OpenSSL order, crypto.md §1). */
    public static byte[] desx(byte[] key, byte[] block) {
        byte[] x = xor(block, Arrays.copyOfRange(key, 8, 16));
        byte[] y = ecb(new DESEngine(), Arrays.copyOfRange(key, 0, 8), x);
        return xor(y, Arrays.copyOfRange(key, 16, 24));
    }

    public static byte[] xor(byte[] a, byte[] b) {
        byte[] out = new byte[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = (byte) (a[i] ^ b[i]);
        }
        return out;
    }

    public static byte[] padM2(byte[] data, int block) {
        int n = (data.length / block + 1) * block;
        byte[] out = Arrays.copyOf(data, n);
        out[data.length] = (byte) 0x80;
        return out;
    }

    public static byte[] oddParity(byte[] k) {
        byte[] out = k.clone();
        for (int i = 0; i < out.length; i++) {
            int b = out[i] & 0xFE;
            out[i] = (byte) (Integer.bitCount(b) % 2 == 0 ? b | 1 : b);
        }
        return out;
    }

    // ---- MACs (crypto.md §2) -----------------------------------------------------------------

    public static byte[] aesCmac(byte[] key, byte[] data) {
        CMac mac = new CMac(AESEngine.newInstance());
        mac.init(new KeyParameter(key));
        mac.update(data, 0, data.length);
        byte[] out = new byte[16];
        mac.doFinal(out, 0);
        return out;
    }

    public static byte[] retailMac(byte[] key, byte[] data) {
        ISO9797Alg3Mac mac = new ISO9797Alg3Mac(new DESEngine(), new ISO7816d4Padding());
        mac.init(new KeyParameter(key));
        mac.update(data, 0, data.length);
        byte[] out = new byte[8];
        mac.doFinal(out, 0);
        return out;
    }

    public static byte[] desxCbcMac(byte[] key, byte[] data) {
        byte[] padded = padM2(data, 8);
        byte[] h = new byte[8];
        for (int i = 0; i < padded.length; i += 8) {
            h = desx(key, xor(Arrays.copyOfRange(padded, i, i + 8), h));
        }
        return h;
    }

    /** The 8-byte message tag of {@code data} under {@code key}. */
    public static byte[] tag(Profile p, byte[] key, byte[] data) {
        switch (p) {
            case AES_CMAC:
                return Arrays.copyOf(aesCmac(key, data), 8);
            case RETAIL_MAC:
                return retailMac(key, data);
            default:
                return desxCbcMac(key, data);
        }
    }

    // ---- key derivation (crypto.md §3) and KCV (§4) --------------------------------------------

    /** {K_req, K_grant} derived from the issuer master key for module {@code id}. */
    public static byte[][] deriveKeys(Profile p, byte[] master, byte[] id) {
        switch (p) {
            case AES_CMAC: {
                byte[][] out = new byte[2][];
                for (int i = 0; i < 2; i++) {
                    byte[] dd = new byte[11 + 1 + 1 + 2 + 1 + 8];
                    dd[11] = (byte) (0x10 + i);
                    dd[12] = 0x00;
                    dd[13] = 0x00;
                    dd[14] = (byte) 0x80;
                    dd[15] = 0x01;
                    System.arraycopy(id, 0, dd, 16, 8);
                    out[i] = aesCmac(master, dd);
                }
                return out;
            }
            case RETAIL_MAC: {
                byte[] zl = ecb(new DESedeEngine(), master, id);
                byte[] ff = new byte[8];
                Arrays.fill(ff, (byte) 0xFF);
                byte[] zr = ecb(new DESedeEngine(), master, xor(id, ff));
                byte[] req = oddParity(Hex.cat(zl, zr));
                return new byte[][] {req, xor(req, fill(16, 0x0F))};
            }
            default: {
                byte[] b1 = desx(master, id);
                byte[] b2 = desx(master, b1);
                byte[] b3 = desx(master, b2);
                byte[] req = Hex.cat(oddParity(b1), b2, b3);
                return new byte[][] {req, xor(req, fill(24, 0x0F))};
            }
        }
    }

    public static byte[] kcv(Profile p, byte[] key) {
        switch (p) {
            case AES_CMAC:
                return Arrays.copyOf(ecb(AESEngine.newInstance(), key, fill(16, 0x01)), 3);
            case RETAIL_MAC:
                return Arrays.copyOf(ecb(new DESedeEngine(), key, new byte[8]), 3);
            default:
                return Arrays.copyOf(desx(key, new byte[8]), 3);
        }
    }

    public static byte[] fill(int n, int v) {
        byte[] b = new byte[n];
        Arrays.fill(b, (byte) v);
        return b;
    }

    // ---- messages (credit-module.md §3) ------------------------------------------------------

    public static byte[] header(Profile p, byte[] id, int type) {
        return Hex.cat(new byte[] {0x01, (byte) type, (byte) p.id}, id);
    }

    public static byte[] seal(Profile p, byte[] key, byte[] body) {
        return Hex.cat(body, tag(p, key, body));
    }

    public static byte[] request(Profile p, byte[] id, byte[] kReq, long n, long r, int b) {
        return seal(p, kReq, Hex.cat(header(p, id, 0x01), Hex.u32(n), Hex.u32(r), Hex.u32(b)));
    }

    public static byte[] grant(Profile p, byte[] id, byte[] kGrant, long sPrime, int status, int reason, long g,
            byte[] requestTag) {
        return seal(p, kGrant, Hex.cat(header(p, id, 0x02), Hex.u32(sPrime),
                new byte[] {(byte) status, (byte) reason}, Hex.u32(g), requestTag));
    }

    public static byte[] provisional(Profile p, byte[] id, byte[] kGrant, long sPrime, byte[] requestTag) {
        return seal(p, kGrant, Hex.cat(header(p, id, 0x03), Hex.u32(sPrime), requestTag));
    }

    public static byte[] completion(Profile p, byte[] id, byte[] kReq, long nPrime, int status, long g, int balance,
            byte[] grantTag) {
        return seal(p, kReq, Hex.cat(header(p, id, 0x04), Hex.u32(nPrime), new byte[] {(byte) status},
                Hex.u32(g), Hex.u32(balance), grantTag));
    }

    public static byte[] limitUpdate(Profile p, byte[] id, byte[] kGrant, long seq, long m, long max, int u, int l) {
        return seal(p, kGrant, Hex.cat(header(p, id, 0x05), Hex.u32(seq), Hex.u32(m), Hex.u32(max),
                Hex.u32(u), Hex.u32(l)));
    }

    /** The last 8 bytes of a message. */
    public static byte[] tagOf(byte[] msg) {
        return Arrays.copyOfRange(msg, msg.length - 8, msg.length);
    }

    public static boolean verify(Profile p, byte[] key, byte[] msg) {
        byte[] body = Arrays.copyOf(msg, msg.length - 8);
        return Arrays.equals(tag(p, key, body), tagOf(msg));
    }
}
