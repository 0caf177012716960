package dev.simkit.credit;

import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * PERSONALISE (spec §4.11): parses one command's BER-TLV objects, checks all of them, then applies
 * all of them in one transaction — a refused command changes nothing.
 *
 * <p>Check order (the first failure decides): structure of every object ({@code 6A80}: unknown
 * or duplicate tag, long-form or overrunning length, fixed lengths, profile id, zero threshold,
 * address over 64 bytes, nothing trailing); keys without a profile ({@code 6985}) or of the wrong
 * length for it ({@code 6A80}); new limits ({@code 9C0B}); the balance — from {@code 86}, or the
 * stored one when only {@code 85} is sent — needs limits ({@code 6985}) and must lie in
 * {@code [−L, U]} ({@code 9C0B}).
 */
final class Personaliser {

    private static final byte TAG_FIRST = Constants.TAG_MODULE_ID;

    private final Persistent p;
    private final Crypto crypto;
    private final byte[] t;

    Personaliser(Persistent persistent, Crypto crypto, Transients transients) {
        this.p = persistent;
        this.crypto = crypto;
        this.t = transients.buf;
    }

    void personalise(byte[] buf, short off, short len) {
        parse(buf, off, len);

        byte newProfile = present(Constants.TAG_PROFILE) ? buf[value(off, Constants.TAG_PROFILE)]
                : Constants.PROFILE_NONE;
        byte profile = newProfile != Constants.PROFILE_NONE ? newProfile : p.profile();
        checkKey(Constants.TAG_K_REQ, profile);
        checkKey(Constants.TAG_K_GRANT, profile);

        boolean newLimits = present(Constants.TAG_LIMITS);
        if (newLimits && !Money.limitsValid(buf, value(off, Constants.TAG_LIMITS))) {
            ISOException.throwIt(Constants.SW_INVALID_LIMITS);
        }
        boolean newInitial = present(Constants.TAG_INITIAL);
        if (newInitial || newLimits) {
            byte[] limits = newLimits ? buf : p.state;
            short limitsOff = newLimits ? value(off, Constants.TAG_LIMITS) : Persistent.OFF_LIMITS;
            if (!newLimits && !p.isPersonalised(Persistent.PERSO_LIMITS)) {
                ISOException.throwIt(Constants.SW_CONDITIONS_OF_USE_NOT_SATISFIED);
            }
            byte[] bal = newInitial ? buf : p.state;
            short balOff = newInitial ? value(off, Constants.TAG_INITIAL) : Persistent.OFF_BALANCE;
            if (!Money.balanceWithin(bal, balOff, limits, limitsOff, t)) {
                ISOException.throwIt(Constants.SW_INVALID_LIMITS);
            }
        }

        JCSystem.beginTransaction();
        apply(buf, off, newProfile);
        JCSystem.commitTransaction();
    }

    /** Pass 1: structure only; records each object's value offset and length in scratch. */
    private void parse(byte[] buf, short off, short len) {
        t[Transients.OFF_TLV_SEEN] = 0;
        short pos = 0;
        while (pos < len) {
            if ((short) (len - pos) < 2) {
                ISOException.throwIt(Constants.SW_INCORRECT_DATA);
            }
            short idx = (short) ((buf[(short) (off + pos)] & 0xFF) - (TAG_FIRST & 0xFF));
            if (idx < 0 || idx >= Constants.TAG_COUNT) {
                ISOException.throwIt(Constants.SW_INCORRECT_DATA);
            }
            // Every value is shorter than 128 bytes: only the one-byte (short form) length.
            short vlen = buf[(short) (off + pos + 1)];
            if (vlen < 0 || vlen > (short) (len - pos - 2)) {
                ISOException.throwIt(Constants.SW_INCORRECT_DATA);
            }
            byte bit = (byte) (1 << idx);
            if ((t[Transients.OFF_TLV_SEEN] & bit) != 0) {
                ISOException.throwIt(Constants.SW_INCORRECT_DATA);
            }
            t[Transients.OFF_TLV_SEEN] |= bit;
            short v = (short) (off + pos + 2);
            checkObject((byte) (idx + TAG_FIRST), buf, v, vlen);
            t[(short) (Transients.OFF_TLV_VALUE + idx)] = (byte) (pos + 2);
            t[(short) (Transients.OFF_TLV_LEN + idx)] = (byte) vlen;
            pos = (short) (pos + 2 + vlen);
        }
    }

    /** Lengths and values that do not depend on other objects or on stored state. */
    private void checkObject(byte tag, byte[] buf, short v, short vlen) {
        boolean ok;
        switch (tag) {
            case Constants.TAG_MODULE_ID:
                ok = vlen == Constants.MODULE_ID_LEN;
                break;
            case Constants.TAG_PROFILE:
                ok = vlen == 1 && crypto.supports(buf[v]);
                break;
            case Constants.TAG_K_REQ:
            case Constants.TAG_K_GRANT:
                ok = vlen == Constants.KEY_LEN_AES || vlen == Constants.KEY_LEN_DESX;
                break;
            case Constants.TAG_LIMITS:
                ok = vlen == Constants.LIMITS_LEN;
                break;
            case Constants.TAG_INITIAL:
                ok = vlen == Constants.INITIAL_LEN;
                break;
            case Constants.TAG_THRESHOLD:
                ok = vlen == Constants.THRESHOLD_LEN && Util.getShort(buf, v) != 0;
                break;
            default: // TAG_SERVER_ADDRESS
                ok = vlen <= Constants.SERVER_ADDRESS_MAX;
                break;
        }
        if (!ok) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
    }

    private void checkKey(byte tag, byte profile) {
        if (!present(tag)) {
            return;
        }
        if (profile == Constants.PROFILE_NONE) {
            ISOException.throwIt(Constants.SW_CONDITIONS_OF_USE_NOT_SATISFIED);
        }
        if (length(tag) != Crypto.keyLength(profile)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
    }

    /** Pass 2, inside the transaction: every check has passed. */
    private void apply(byte[] buf, short off, byte newProfile) {
        byte[] s = p.state;
        if (newProfile != Constants.PROFILE_NONE) {
            changeProfile(p.profile(), newProfile);
            s[Persistent.OFF_PROFILE] = newProfile;
            s[Persistent.OFF_PERSO] |= Persistent.PERSO_PROFILE;
        }
        byte profile = p.profile();
        if (present(Constants.TAG_MODULE_ID)) {
            Util.arrayCopy(buf, value(off, Constants.TAG_MODULE_ID), s, Persistent.OFF_MODULE_ID,
                    Constants.MODULE_ID_LEN);
            s[Persistent.OFF_PERSO] |= Persistent.PERSO_MODULE_ID;
        }
        if (present(Constants.TAG_K_REQ)) {
            crypto.setKey(Crypto.ROLE_REQ, profile, buf, value(off, Constants.TAG_K_REQ));
            s[Persistent.OFF_PERSO] |= Persistent.PERSO_K_REQ;
        }
        if (present(Constants.TAG_K_GRANT)) {
            crypto.setKey(Crypto.ROLE_GRANT, profile, buf, value(off, Constants.TAG_K_GRANT));
            s[Persistent.OFF_PERSO] |= Persistent.PERSO_K_GRANT;
        }
        if (present(Constants.TAG_LIMITS)) {
            Util.arrayCopy(buf, value(off, Constants.TAG_LIMITS), s, Persistent.OFF_LIMITS,
                    Constants.LIMITS_LEN);
            s[Persistent.OFF_PERSO] |= Persistent.PERSO_LIMITS;
        }
        if (present(Constants.TAG_INITIAL)) {
            Util.arrayCopy(buf, value(off, Constants.TAG_INITIAL), s, Persistent.OFF_BALANCE,
                    Constants.INITIAL_LEN);
        }
        if (present(Constants.TAG_THRESHOLD)) {
            Util.arrayCopy(buf, value(off, Constants.TAG_THRESHOLD), s, Persistent.OFF_THRESHOLD,
                    Constants.THRESHOLD_LEN);
            s[Persistent.OFF_PERSO] |= Persistent.PERSO_THRESHOLD;
        }
        if (present(Constants.TAG_SERVER_ADDRESS)) {
            short len = length(Constants.TAG_SERVER_ADDRESS);
            Util.arrayCopy(buf, value(off, Constants.TAG_SERVER_ADDRESS), p.serverAddress, (short) 0, len);
            s[Persistent.OFF_ADDRESS_LEN] = (byte) len;
        }
    }

    /**
     * Any change of profile clears both keys (§4.11), even between profiles of the same key
     * length: key bytes loaded for one algorithm are never used with another (a 16-byte AES key
     * never becomes a 2-key 3DES key). Re-sending the profile in force changes nothing.
     */
    private void changeProfile(byte from, byte to) {
        if (from == Constants.PROFILE_NONE || from == to) {
            return;
        }
        if (p.isPersonalised(Persistent.PERSO_K_REQ)) {
            crypto.clearKey(Crypto.ROLE_REQ, from);
        }
        if (p.isPersonalised(Persistent.PERSO_K_GRANT)) {
            crypto.clearKey(Crypto.ROLE_GRANT, from);
        }
        p.state[Persistent.OFF_PERSO] &= (byte) ~(Persistent.PERSO_K_REQ | Persistent.PERSO_K_GRANT);
    }

    private boolean present(byte tag) {
        return (t[Transients.OFF_TLV_SEEN] & (byte) (1 << (short) ((tag & 0xFF) - (TAG_FIRST & 0xFF)))) != 0;
    }

    private short value(short off, byte tag) {
        return (short) (off + (t[(short) (Transients.OFF_TLV_VALUE + index(tag))] & 0xFF));
    }

    private short length(byte tag) {
        return (short) (t[(short) (Transients.OFF_TLV_LEN + index(tag))] & 0xFF);
    }

    private static short index(byte tag) {
        return (short) ((tag & 0xFF) - (TAG_FIRST & 0xFF));
    }
}
