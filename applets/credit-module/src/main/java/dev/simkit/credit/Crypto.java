package dev.simkit.credit;

import javacard.framework.Util;
import javacard.security.AESKey;
import javacard.security.CryptoException;
import javacard.security.DESKey;
import javacard.security.Key;
import javacard.security.KeyBuilder;
import javacard.security.Signature;
import javacardx.crypto.Cipher;

/**
 * The three message-tag profiles of crypto.md §2 and the two module keys K_req / K_grant.
 *
 * <p>Every algorithm is probed once, at install: a card without AES (or without DES) simply does
 * not support that profile, and {@link #supports} tells PERSONALISE so. For aes-cmac the native
 * {@code ALG_AES_CMAC_128} is used when the card has it, otherwise CMAC is built from AES-ECB
 * (NIST SP 800-38B, subkeys K1/K2). {@code ALG_DES_MAC8_ISO9797_M1} is never used (wrong for
 * block-aligned input in jCardSim, and padding method 1 is not ours anyway).
 *
 * <p>Owns: the key objects (persistent), the DES-X whitening halves (persistent), the cipher and
 * signature engines. Must not: hold key bytes anywhere but in key objects and the whitening
 * arrays, or compare tags with anything but {@link #verify} (constant time over all 8 bytes).
 */
final class Crypto {

    static final byte ROLE_REQ = 0;
    static final byte ROLE_GRANT = 1;

    /** Which CMAC implementation runs for aes-cmac. */
    static final byte CMAC_NONE = 0;
    static final byte CMAC_NATIVE = 1;
    static final byte CMAC_FALLBACK = 2;

    private static final short AES_BLOCK = 16;
    private static final short DES_BLOCK = 8;
    private static final byte CMAC_RB = (byte) 0x87;
    private static final byte PAD_M2 = (byte) 0x80;

    private final byte[] t;
    private final byte cmacImpl;

    private AESKey aesReq;
    private AESKey aesGrant;
    private Signature cmac;
    private Cipher aesEcb;

    private DESKey retailReq;
    private DESKey retailGrant;
    private Signature retailMac;

    private DESKey desxReq;
    private DESKey desxGrant;
    private Cipher desEcb;
    /** DES-X PRE ‖ POST per role (DESKEY lives in the DESKey object). */
    private final byte[] whitenReq;
    private final byte[] whitenGrant;

    /**
     * @param transients scratch memory (the MAC regions of {@link Transients})
     * @param preferNativeCmac use {@code ALG_AES_CMAC_128} when the card has it; {@code false}
     *     forces the AES-ECB construction (tests use this to check both agree)
     */
    Crypto(Transients transients, boolean preferNativeCmac) {
        t = transients.buf;
        whitenReq = new byte[(short) (2 * DES_BLOCK)];
        whitenGrant = new byte[(short) (2 * DES_BLOCK)];

        byte impl = CMAC_NONE;
        try {
            aesReq = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES, KeyBuilder.LENGTH_AES_128, false);
            aesGrant = (AESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_AES, KeyBuilder.LENGTH_AES_128, false);
            if (preferNativeCmac) {
                try {
                    cmac = Signature.getInstance(Signature.ALG_AES_CMAC_128, false);
                    impl = CMAC_NATIVE;
                } catch (CryptoException e) {
                    cmac = null;
                }
            }
            if (impl == CMAC_NONE) {
                aesEcb = Cipher.getInstance(Cipher.ALG_AES_BLOCK_128_ECB_NOPAD, false);
                impl = CMAC_FALLBACK;
            }
        } catch (CryptoException e) {
            aesReq = null;
            aesGrant = null;
            cmac = null;
            aesEcb = null;
            impl = CMAC_NONE;
        }
        cmacImpl = impl;

        try {
            retailReq = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
            retailGrant = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES3_2KEY, false);
            retailMac = Signature.getInstance(Signature.ALG_DES_MAC8_ISO9797_1_M2_ALG3, false);
        } catch (CryptoException e) {
            retailReq = null;
            retailGrant = null;
            retailMac = null;
        }

        try {
            desxReq = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES, false);
            desxGrant = (DESKey) KeyBuilder.buildKey(KeyBuilder.TYPE_DES, KeyBuilder.LENGTH_DES, false);
            desEcb = Cipher.getInstance(Cipher.ALG_DES_ECB_NOPAD, false);
        } catch (CryptoException e) {
            desxReq = null;
            desxGrant = null;
            desEcb = null;
        }
    }

    /** Which CMAC implementation aes-cmac uses on this card. */
    byte cmacImplementation() {
        return cmacImpl;
    }

    /** True when this card can run {@code profile}. */
    boolean supports(byte profile) {
        switch (profile) {
            case Constants.PROFILE_AES_CMAC:
                return cmacImpl != CMAC_NONE;
            case Constants.PROFILE_RETAIL_MAC:
                return retailMac != null;
            case Constants.PROFILE_DESX_CBC:
                return desEcb != null;
            default:
                return false;
        }
    }

    /** Module key length of {@code profile} (crypto.md table), 0 for none. */
    static short keyLength(byte profile) {
        switch (profile) {
            case Constants.PROFILE_AES_CMAC:
                return Constants.KEY_LEN_AES;
            case Constants.PROFILE_RETAIL_MAC:
                return Constants.KEY_LEN_RETAIL;
            case Constants.PROFILE_DESX_CBC:
                return Constants.KEY_LEN_DESX;
            default:
                return 0;
        }
    }

    // ---- keys --------------------------------------------------------------------------------

    private Key key(byte role, byte profile) {
        boolean req = role == ROLE_REQ;
        switch (profile) {
            case Constants.PROFILE_AES_CMAC:
                return req ? aesReq : aesGrant;
            case Constants.PROFILE_RETAIL_MAC:
                return req ? retailReq : retailGrant;
            default:
                return req ? desxReq : desxGrant;
        }
    }

    private byte[] whiten(byte role) {
        return role == ROLE_REQ ? whitenReq : whitenGrant;
    }

    /**
     * Loads a key of {@code keyLength(profile)} bytes. Called inside the PERSONALISE transaction,
     * so the whitening halves are copied with the transactional {@code arrayCopy}.
     */
    void setKey(byte role, byte profile, byte[] src, short off) {
        switch (profile) {
            case Constants.PROFILE_AES_CMAC:
                ((AESKey) key(role, profile)).setKey(src, off);
                break;
            case Constants.PROFILE_RETAIL_MAC:
                ((DESKey) key(role, profile)).setKey(src, off);
                break;
            default:
                ((DESKey) key(role, profile)).setKey(src, off);
                Util.arrayCopy(src, (short) (off + DES_BLOCK), whiten(role), (short) 0, (short) (2 * DES_BLOCK));
                break;
        }
    }

    /** Forgets the key of {@code role} held for {@code profile}. */
    void clearKey(byte role, byte profile) {
        Key k = key(role, profile);
        if (k != null) {
            k.clearKey();
        }
        if (profile == Constants.PROFILE_DESX_CBC) {
            // Plain stores: they join the caller's transaction (the 3.0.5 API has no atomic
            // fill, and arrayFillNonAtomic would escape the transaction).
            byte[] w = whiten(role);
            for (short i = 0; i < (short) (2 * DES_BLOCK); i++) {
                w[i] = 0;
            }
        }
    }

    // ---- tags --------------------------------------------------------------------------------

    /** Writes the 8-byte tag of {@code in[off..off+len)} under the key of {@code role}. */
    void sign(byte role, byte profile, byte[] in, short off, short len, byte[] out, short outOff) {
        compute(role, profile, in, off, len);
        Util.arrayCopyNonAtomic(t, Transients.OFF_MAC_OUT, out, outOff, Constants.TAG_LEN);
    }

    /**
     * True when {@code tag[tagOff..+8)} is the tag of {@code in[off..off+len)}. Touches all 8
     * bytes whatever they hold (never {@code Util.arrayCompare}, which returns early).
     */
    boolean verify(byte role, byte profile, byte[] in, short off, short len, byte[] tag, short tagOff) {
        compute(role, profile, in, off, len);
        return equalTags(t, Transients.OFF_MAC_OUT, tag, tagOff);
    }

    /** Constant-time comparison of two 8-byte tags. */
    static boolean equalTags(byte[] a, short aOff, byte[] b, short bOff) {
        byte diff = 0;
        for (short i = 0; i < Constants.TAG_LEN; i++) {
            diff |= (byte) (a[(short) (aOff + i)] ^ b[(short) (bOff + i)]);
        }
        return diff == 0;
    }

    /** Leaves the full MAC in {@code t[OFF_MAC_OUT..)}; the tag is its first 8 bytes. */
    private void compute(byte role, byte profile, byte[] in, short off, short len) {
        switch (profile) {
            case Constants.PROFILE_AES_CMAC:
                if (cmacImpl == CMAC_NATIVE) {
                    cmac.init(key(role, profile), Signature.MODE_SIGN);
                    cmac.sign(in, off, len, t, Transients.OFF_MAC_OUT);
                } else {
                    cmacFromEcb((AESKey) key(role, profile), in, off, len);
                }
                break;
            case Constants.PROFILE_RETAIL_MAC:
                retailMac.init(key(role, profile), Signature.MODE_SIGN);
                retailMac.sign(in, off, len, t, Transients.OFF_MAC_OUT);
                break;
            case Constants.PROFILE_DESX_CBC:
                desxCbcMac((DESKey) key(role, profile), whiten(role), in, off, len);
                break;
            default:
                CryptoException.throwIt(CryptoException.NO_SUCH_ALGORITHM);
        }
    }

    /** AES-CMAC (NIST SP 800-38B) from single-block AES-ECB encryptions. */
    private void cmacFromEcb(AESKey k, byte[] in, short off, short len) {
        aesEcb.init(k, Cipher.MODE_ENCRYPT);
        // L = AES_K(0^128); K1 = dbl(L); K2 = dbl(K1).
        Util.arrayFillNonAtomic(t, Transients.OFF_MAC_BLOCK, AES_BLOCK, (byte) 0);
        aesEcb.doFinal(t, Transients.OFF_MAC_BLOCK, AES_BLOCK, t, Transients.OFF_MAC_SUBKEY);
        doubleBlock(t, Transients.OFF_MAC_SUBKEY);
        short rem = (short) (len & (short) (AES_BLOCK - 1));
        boolean complete = len != 0 && rem == 0;
        if (!complete) {
            doubleBlock(t, Transients.OFF_MAC_SUBKEY);
        }
        // Every block but the last is a plain CBC step.
        short lastOff = complete ? (short) (len - AES_BLOCK) : (short) (len - rem);
        Util.arrayFillNonAtomic(t, Transients.OFF_MAC_CHAIN, AES_BLOCK, (byte) 0);
        for (short p = 0; p < lastOff; p = (short) (p + AES_BLOCK)) {
            xorInto(t, Transients.OFF_MAC_CHAIN, in, (short) (off + p), AES_BLOCK);
            aesEcb.doFinal(t, Transients.OFF_MAC_CHAIN, AES_BLOCK, t, Transients.OFF_MAC_BLOCK);
            Util.arrayCopyNonAtomic(t, Transients.OFF_MAC_BLOCK, t, Transients.OFF_MAC_CHAIN, AES_BLOCK);
        }
        // Last block: complete → ⊕ K1; partial → pad 80 00…, ⊕ K2.
        Util.arrayFillNonAtomic(t, Transients.OFF_MAC_BLOCK, AES_BLOCK, (byte) 0);
        short lastLen = (short) (len - lastOff);
        Util.arrayCopyNonAtomic(in, (short) (off + lastOff), t, Transients.OFF_MAC_BLOCK, lastLen);
        if (!complete) {
            t[(short) (Transients.OFF_MAC_BLOCK + lastLen)] = PAD_M2;
        }
        xorInto(t, Transients.OFF_MAC_BLOCK, t, Transients.OFF_MAC_SUBKEY, AES_BLOCK);
        xorInto(t, Transients.OFF_MAC_BLOCK, t, Transients.OFF_MAC_CHAIN, AES_BLOCK);
        aesEcb.doFinal(t, Transients.OFF_MAC_BLOCK, AES_BLOCK, t, Transients.OFF_MAC_OUT);
        Util.arrayFillNonAtomic(t, Transients.OFF_MAC_SUBKEY, AES_BLOCK, (byte) 0);
    }

    /** GF(2^128) doubling of CMAC: shift left one bit, ⊕ 0x87 when the top bit fell out. */
    private static void doubleBlock(byte[] b, short off) {
        // Mask instead of a branch so the subkey's top bit does not show in timing.
        byte rb = (byte) ((b[off] >> 7) & CMAC_RB);
        short last = (short) (off + AES_BLOCK - 1);
        for (short i = off; i < last; i++) {
            b[i] = (byte) ((b[i] << 1) | ((b[(short) (i + 1)] >> 7) & 0x01));
        }
        b[last] = (byte) ((b[last] << 1) ^ rb);
    }

    /**
     * DES-X CBC-MAC with padding method 2: H0 = 0, Hi = POST ⊕ DES(Di ⊕ Hi−1 ⊕ PRE), tag = Hq.
     */
    private void desxCbcMac(DESKey k, byte[] w, byte[] in, short off, short len) {
        desEcb.init(k, Cipher.MODE_ENCRYPT);
        Util.arrayFillNonAtomic(t, Transients.OFF_MAC_CHAIN, DES_BLOCK, (byte) 0);
        short p = 0;
        boolean last = false;
        while (!last) {
            short remaining = (short) (len - p);
            if (remaining >= DES_BLOCK) {
                Util.arrayCopyNonAtomic(in, (short) (off + p), t, Transients.OFF_MAC_BLOCK, DES_BLOCK);
            } else {
                // Padding method 2: always at least one byte, so a block-aligned message gets a
                // whole extra block 80 00…00.
                Util.arrayFillNonAtomic(t, Transients.OFF_MAC_BLOCK, DES_BLOCK, (byte) 0);
                Util.arrayCopyNonAtomic(in, (short) (off + p), t, Transients.OFF_MAC_BLOCK, remaining);
                t[(short) (Transients.OFF_MAC_BLOCK + remaining)] = PAD_M2;
                last = true;
            }
            xorInto(t, Transients.OFF_MAC_BLOCK, t, Transients.OFF_MAC_CHAIN, DES_BLOCK);
            xorInto(t, Transients.OFF_MAC_BLOCK, w, (short) 0, DES_BLOCK);
            desEcb.doFinal(t, Transients.OFF_MAC_BLOCK, DES_BLOCK, t, Transients.OFF_MAC_CHAIN);
            xorInto(t, Transients.OFF_MAC_CHAIN, w, DES_BLOCK, DES_BLOCK);
            p = (short) (p + DES_BLOCK);
        }
        Util.arrayCopyNonAtomic(t, Transients.OFF_MAC_CHAIN, t, Transients.OFF_MAC_OUT, DES_BLOCK);
    }

    private static void xorInto(byte[] dst, short dOff, byte[] src, short sOff, short len) {
        for (short i = 0; i < len; i++) {
            dst[(short) (dOff + i)] ^= src[(short) (sOff + i)];
        }
    }
}
