package dev.simkit.credit;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * The simkit credit module (applet-spec/credit-module.md): prepaid credits reloaded only by MAC'd
 * reload grants, guarded by transaction numbers, balance limits and fraud registration.
 *
 * <p>{@link #process} runs in a fixed order: SELECT → CLA → INS known → P1/P2 → lifecycle gate
 * (§4 table) → receive and check Lc → {@code processX}, which returns the response length.
 * Every multi-field update is one {@code JCSystem} transaction; a fraud registration is committed
 * before its status word is thrown (§7). Everything is allocated at install.
 */
public class CreditModule extends Applet {

    private final byte[] t;
    private final Persistent p;
    private final Crypto crypto;
    private final Personaliser personaliser;

    /** The applet AID bytes are not needed: install parameters are ignored (§1). */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new CreditModule(true).register();
    }

    /**
     * @param preferNativeCmac {@code false} forces the AES-ECB CMAC construction even on a card
     *     with {@code ALG_AES_CMAC_128} (used by tests to prove both give the same bytes)
     */
    protected CreditModule(boolean preferNativeCmac) {
        Transients transients = new Transients();
        t = transients.buf;
        p = new Persistent();
        crypto = new Crypto(transients, preferNativeCmac);
        personaliser = new Personaliser(p, crypto, transients);
    }

    @Override
    public void process(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        // 1. SELECT of this applet: no data, 9000 in every lifecycle state (§4.1).
        if (selectingApplet()) {
            return;
        }
        // 2. CLA: 80 for every proprietary command; 00 only for SELECT.
        byte cla = buf[ISO7816.OFFSET_CLA];
        byte ins = buf[ISO7816.OFFSET_INS];
        if (cla == Constants.CLA_ISO && ins == Constants.INS_SELECT) {
            // A SELECT the runtime passed on: it names no applet here, or is not by name.
            ISOException.throwIt(Constants.SW_FILE_NOT_FOUND);
        }
        if (cla != Constants.CLA_PROPRIETARY) {
            ISOException.throwIt(Constants.SW_CLA_NOT_SUPPORTED);
        }
        // 3. INS known (6D00), 4. P1/P2 (6A86), 5. lifecycle gate (6985 / 9C08) — the order of
        //    the reference model simkit-core::credit::applet.
        byte allowed = allowedStates(ins);
        if (buf[ISO7816.OFFSET_P1] != 0 || buf[ISO7816.OFFSET_P2] != 0) {
            ISOException.throwIt(Constants.SW_INCORRECT_P1P2);
        }
        gate(allowed);
        // 6. Lc (checked per command, 6700), then the command's own checks.
        short lc = receive(apdu);
        short len;
        switch (ins) {
            case Constants.INS_GET_STATUS:
                len = processGetStatus(buf, lc);
                break;
            case Constants.INS_GET_SERVER_ADDRESS:
                len = processGetServerAddress(buf, lc);
                break;
            case Constants.INS_INITIATE_RELOAD:
                len = processInitiateReload(buf, lc);
                break;
            case Constants.INS_APPLY_GRANT:
                len = processApplyGrant(buf, lc);
                break;
            case Constants.INS_APPLY_PROVISIONAL_ACK:
                len = processApplyProvisionalAck(buf, lc);
                break;
            case Constants.INS_GET_LAST_COMPLETION:
                len = processGetLastCompletion(buf, lc);
                break;
            case Constants.INS_DEBIT:
                len = processDebit(buf, lc);
                break;
            case Constants.INS_APPLY_LIMIT_UPDATE:
                len = processApplyLimitUpdate(buf, lc);
                break;
            case Constants.INS_GET_FRAUD_LOG:
                len = processGetFraudLog(buf, lc);
                break;
            case Constants.INS_PERSONALISE:
                len = processPersonalise(buf, lc);
                break;
            default: // INS_LOCK: allowedStates() let nothing else through
                len = processLock(lc);
                break;
        }
        if (len > 0) {
            apdu.setOutgoingAndSend(ISO7816.OFFSET_CDATA, len);
        }
    }

    /** The §4 table as a mask of GATE_ bits; 6D00 for an unknown INS, in every state. */
    private static byte allowedStates(byte ins) {
        switch (ins) {
            case Constants.INS_GET_STATUS:
            case Constants.INS_GET_SERVER_ADDRESS:
            case Constants.INS_GET_FRAUD_LOG:
                return Constants.GATE_ALL;
            case Constants.INS_INITIATE_RELOAD:
            case Constants.INS_APPLY_GRANT:
            case Constants.INS_APPLY_PROVISIONAL_ACK:
            case Constants.INS_DEBIT:
            case Constants.INS_APPLY_LIMIT_UPDATE:
                return Constants.GATE_OPERATIONAL;
            case Constants.INS_GET_LAST_COMPLETION:
                return (byte) (Constants.GATE_OPERATIONAL | Constants.GATE_BLOCKED);
            case Constants.INS_PERSONALISE:
            case Constants.INS_LOCK:
                return Constants.GATE_PERSONALISATION;
            default:
                ISOException.throwIt(Constants.SW_INS_NOT_SUPPORTED);
                return 0;
        }
    }

    /** Refuses a command the current lifecycle state does not allow: 9C08 when blocked, else 6985. */
    private void gate(byte allowed) {
        byte lifecycle = p.lifecycle();
        byte mine = (byte) (1 << (short) (lifecycle - 1));
        if ((allowed & mine) == 0) {
            ISOException.throwIt(lifecycle == Constants.LIFECYCLE_BLOCKED
                    ? Constants.SW_MODULE_BLOCKED : Constants.SW_CONDITIONS_OF_USE_NOT_SATISFIED);
        }
    }

    /** Receives all command data into the APDU buffer; answers Lc (0 for case 1/2 commands). */
    private static short receive(APDU apdu) {
        short got = apdu.setIncomingAndReceive();
        short lc = apdu.getIncomingLength();
        while (got < lc) {
            got = (short) (got + apdu.receiveBytes((short) (ISO7816.OFFSET_CDATA + got)));
        }
        return lc;
    }

    private static void expectLc(short lc, short expected) {
        if (lc != expected) {
            ISOException.throwIt(Constants.SW_WRONG_LENGTH);
        }
    }

    // ---- reads -------------------------------------------------------------------------------

    /** §4.2 GET STATUS: 49 bytes. */
    private short processGetStatus(byte[] buf, short lc) {
        expectLc(lc, Constants.LC_NONE);
        short o = ISO7816.OFFSET_CDATA;
        Util.arrayCopyNonAtomic(p.state, (short) 0, buf, o, Persistent.STATUS_HEAD_LEN);
        o = (short) (o + Persistent.STATUS_HEAD_LEN);
        if (p.hasFlag(Constants.FLAG_PENDING)) {
            Util.arrayCopyNonAtomic(p.pending, Constants.REQ_OFF_R, buf, o, Arith.U32);
        } else {
            Util.arrayFillNonAtomic(buf, o, Arith.U32, (byte) 0);
        }
        o = (short) (o + Arith.U32);
        Util.arrayCopyNonAtomic(p.state, Persistent.OFF_BAD_TAGS, buf, o, Persistent.STATUS_TAIL_LEN);
        return Constants.STATUS_LEN;
    }

    /** §4.3 GET SERVER ADDRESS: 0..64 bytes. */
    private short processGetServerAddress(byte[] buf, short lc) {
        expectLc(lc, Constants.LC_NONE);
        short len = p.state[Persistent.OFF_ADDRESS_LEN];
        Util.arrayCopyNonAtomic(p.serverAddress, (short) 0, buf, ISO7816.OFFSET_CDATA, len);
        return len;
    }

    /** §4.7 GET LAST COMPLETION: the stored 40-byte ack, 6A88 when none. */
    private short processGetLastCompletion(byte[] buf, short lc) {
        expectLc(lc, Constants.LC_NONE);
        if (!p.hasFlag(Constants.FLAG_COMPLETION)) {
            ISOException.throwIt(Constants.SW_REFERENCED_DATA_NOT_FOUND);
        }
        Util.arrayCopyNonAtomic(p.completion, Persistent.COMPLETION_OFF_ACK, buf, ISO7816.OFFSET_CDATA,
                Constants.ACK_LEN);
        return Constants.ACK_LEN;
    }

    /** §4.10 GET FRAUD LOG: count ‖ entries, newest first. */
    private short processGetFraudLog(byte[] buf, short lc) {
        expectLc(lc, Constants.LC_NONE);
        return p.readFraudLog(buf, ISO7816.OFFSET_CDATA);
    }

    // ---- reload ------------------------------------------------------------------------------

    /** §4.4 INITIATE RELOAD: the 31-byte request. */
    private short processInitiateReload(byte[] buf, short lc) {
        expectLc(lc, Constants.LC_AMOUNT);
        short r = ISO7816.OFFSET_CDATA;
        byte[] s = p.state;
        // 1. A pending request is answered again byte for byte, with no other check.
        if (p.hasFlag(Constants.FLAG_PENDING)) {
            if (Util.arrayCompare(buf, r, p.pending, Constants.REQ_OFF_R, Arith.U32) != 0) {
                ISOException.throwIt(Constants.SW_DIFFERENT_RELOAD_PENDING);
            }
            Util.arrayCopyNonAtomic(p.pending, (short) 0, buf, ISO7816.OFFSET_CDATA, Constants.REQ_LEN);
            return Constants.REQ_LEN;
        }
        // 2. N never wraps: at 2^32−1 the module blocks (a one-byte write, atomic by itself, but
        //    kept in a transaction as the spec asks).
        if (Arith.isAllOnes(s, Persistent.OFF_N, Arith.U32)) {
            JCSystem.beginTransaction();
            s[Persistent.OFF_LIFECYCLE] = Constants.LIFECYCLE_BLOCKED;
            JCSystem.commitTransaction();
            ISOException.throwIt(Constants.SW_COUNTER_EXHAUSTED);
        }
        // 3. m ≤ R ≤ M and B + R ≤ U (wide).
        short lim = Persistent.OFF_LIMITS;
        if (Arith.compareUnsigned(buf, r, s, (short) (lim + Constants.LIMITS_OFF_MIN), Arith.U32) < 0
                || Arith.compareUnsigned(buf, r, s, (short) (lim + Constants.LIMITS_OFF_MAX), Arith.U32) > 0
                || !Money.fitsUnderUpper(s, Persistent.OFF_BALANCE, buf, r,
                        s, (short) (lim + Constants.LIMITS_OFF_UPPER), t)) {
            ISOException.throwIt(Constants.SW_RELOAD_AMOUNT_OUT_OF_RANGE);
        }
        // 4. Build {N, R, B} and its tag in scratch, then store it and set pending together.
        short m = Transients.OFF_MSG;
        writeHeader(t, m, Constants.MSG_TYPE_REQUEST);
        Util.arrayCopyNonAtomic(s, Persistent.OFF_N, t, (short) (m + Constants.REQ_OFF_N), Arith.U32);
        Util.arrayCopyNonAtomic(buf, r, t, (short) (m + Constants.REQ_OFF_R), Arith.U32);
        Util.arrayCopyNonAtomic(s, Persistent.OFF_BALANCE, t, (short) (m + Constants.REQ_OFF_B), Arith.U32);
        crypto.sign(Crypto.ROLE_REQ, p.profile(), t, m, Constants.REQ_OFF_TAG, t,
                (short) (m + Constants.REQ_OFF_TAG));
        JCSystem.beginTransaction();
        Util.arrayCopy(t, m, p.pending, (short) 0, Constants.REQ_LEN);
        s[Persistent.OFF_FLAGS] = (byte) ((s[Persistent.OFF_FLAGS] | Constants.FLAG_PENDING)
                & ~Constants.FLAG_PROVISIONAL);
        JCSystem.commitTransaction();
        Util.arrayCopyNonAtomic(t, m, buf, ISO7816.OFFSET_CDATA, Constants.REQ_LEN);
        return Constants.REQ_LEN;
    }

    /** §4.5 APPLY GRANT: checks 1–8 in order, then step 9 in one transaction; the 40-byte ack. */
    private short processApplyGrant(byte[] buf, short lc) {
        // 1. Length, then header (not registered: nothing authenticated yet).
        expectLc(lc, Constants.GRANT_LEN);
        short g = ISO7816.OFFSET_CDATA;
        checkHeader(buf, g, Constants.MSG_TYPE_GRANT);
        short sOff = (short) (g + Constants.GRANT_OFF_S);
        byte profile = p.profile();
        byte[] s = p.state;
        // 2. Tag under K_grant.
        if (!crypto.verify(Crypto.ROLE_GRANT, profile, buf, g, Constants.GRANT_OFF_TAG, buf,
                (short) (g + Constants.GRANT_OFF_TAG))) {
            fraud(Constants.FRAUD_BAD_TAG, buf, sOff, Constants.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        // 3. Already applied: S′ = N and the same grant tag as the last completion.
        if (p.hasFlag(Constants.FLAG_COMPLETION)
                && Util.arrayCompare(buf, sOff, s, Persistent.OFF_N, Arith.U32) == 0
                && Crypto.equalTags(buf, (short) (g + Constants.GRANT_OFF_TAG),
                        p.completion, Persistent.COMPLETION_OFF_GRANT_TAG)) {
            ISOException.throwIt(Constants.SW_GRANT_ALREADY_APPLIED);
        }
        // 4. S′ = N + 1, compared wide so that N = 2^32−1 has no successor.
        checkWindow(buf, sOff);
        // 5. A pending request.
        if (!p.hasFlag(Constants.FLAG_PENDING)) {
            fraud(Constants.FRAUD_WINDOW, buf, sOff, Constants.SW_NO_RELOAD_PENDING);
        }
        // 6. Bound to the pending request.
        if (!Crypto.equalTags(buf, (short) (g + Constants.GRANT_OFF_REQ_TAG), p.pending, Constants.REQ_OFF_TAG)) {
            fraud(Constants.FRAUD_WINDOW, buf, sOff, Constants.SW_MESSAGE_MISMATCH);
        }
        // 7. Status, reason and amount consistent (not registered).
        byte status = buf[(short) (g + Constants.GRANT_OFF_STATUS)];
        byte reason = buf[(short) (g + Constants.GRANT_OFF_REASON)];
        short gOff = (short) (g + Constants.GRANT_OFF_G);
        boolean granted = status == Constants.GRANT_STATUS_GRANTED;
        boolean consistent = granted ? reason == Constants.GRANT_REASON_NONE
                : status == Constants.GRANT_STATUS_DECLINED
                        && reason >= Constants.GRANT_REASON_FIRST && reason <= Constants.GRANT_REASON_LAST
                        && Arith.isZero(buf, gOff, Arith.U32);
        if (!consistent) {
            ISOException.throwIt(Constants.SW_MESSAGE_MISMATCH);
        }
        // 8. G ≤ R, B + G ≤ U (wide), G ≠ 0.
        if (granted && (Arith.compareUnsigned(buf, gOff, p.pending, Constants.REQ_OFF_R, Arith.U32) > 0
                || !Money.fitsUnderUpper(s, Persistent.OFF_BALANCE, buf, gOff,
                        s, (short) (Persistent.OFF_LIMITS + Constants.LIMITS_OFF_UPPER), t)
                || Arith.isZero(buf, gOff, Arith.U32))) {
            fraud(Constants.FRAUD_GRANT_BEYOND_LIMITS, buf, sOff, Constants.SW_GRANT_EXCEEDS_LIMITS);
        }
        // 9. Build the completion ack in scratch (new balance included), then commit
        //    balance, N, pending, provisional and last completion together.
        short m = Transients.OFF_MSG;
        writeHeader(t, m, Constants.MSG_TYPE_COMPLETION);
        Util.arrayCopyNonAtomic(buf, sOff, t, (short) (m + Constants.ACK_OFF_N), Arith.U32);
        t[(short) (m + Constants.ACK_OFF_STATUS)] = status;
        Util.arrayCopyNonAtomic(buf, gOff, t, (short) (m + Constants.ACK_OFF_G), Arith.U32);
        Money.add(s, Persistent.OFF_BALANCE, buf, gOff, t, (short) (m + Constants.ACK_OFF_B), t);
        Util.arrayCopyNonAtomic(buf, (short) (g + Constants.GRANT_OFF_TAG), t,
                (short) (m + Constants.ACK_OFF_GRANT_TAG), Constants.TAG_LEN);
        crypto.sign(Crypto.ROLE_REQ, profile, t, m, Constants.ACK_OFF_TAG, t, (short) (m + Constants.ACK_OFF_TAG));

        JCSystem.beginTransaction();
        Util.arrayCopy(t, (short) (m + Constants.ACK_OFF_B), s, Persistent.OFF_BALANCE, Arith.U32);
        Util.arrayCopy(buf, sOff, s, Persistent.OFF_N, Arith.U32);
        Util.arrayCopy(t, m, p.completion, Persistent.COMPLETION_OFF_ACK, Constants.ACK_LEN);
        Util.arrayCopy(buf, (short) (g + Constants.GRANT_OFF_TAG), p.completion,
                Persistent.COMPLETION_OFF_GRANT_TAG, Constants.TAG_LEN);
        s[Persistent.OFF_FLAGS] = Constants.FLAG_COMPLETION;
        JCSystem.commitTransaction();

        Util.arrayCopyNonAtomic(t, m, buf, ISO7816.OFFSET_CDATA, Constants.ACK_LEN);
        return Constants.ACK_LEN;
    }

    /** §4.6 APPLY PROVISIONAL ACK: opens the credit line for the pending request. */
    private short processApplyProvisionalAck(byte[] buf, short lc) {
        expectLc(lc, Constants.PROV_LEN);
        short a = ISO7816.OFFSET_CDATA;
        checkHeader(buf, a, Constants.MSG_TYPE_PROVISIONAL);
        short sOff = (short) (a + Constants.PROV_OFF_S);
        if (!crypto.verify(Crypto.ROLE_GRANT, p.profile(), buf, a, Constants.PROV_OFF_TAG, buf,
                (short) (a + Constants.PROV_OFF_TAG))) {
            fraud(Constants.FRAUD_BAD_TAG, buf, sOff, Constants.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (!p.hasFlag(Constants.FLAG_PENDING)) {
            fraud(Constants.FRAUD_WINDOW, buf, sOff, Constants.SW_NO_RELOAD_PENDING);
        }
        checkWindow(buf, sOff);
        if (!Crypto.equalTags(buf, (short) (a + Constants.PROV_OFF_REQ_TAG), p.pending, Constants.REQ_OFF_TAG)) {
            fraud(Constants.FRAUD_WINDOW, buf, sOff, Constants.SW_MESSAGE_MISMATCH);
        }
        // One byte: atomic on its own.
        p.state[Persistent.OFF_FLAGS] |= Constants.FLAG_PROVISIONAL;
        return 0;
    }

    /** §4.8 DEBIT: the new balance (i32). */
    private short processDebit(byte[] buf, short lc) {
        expectLc(lc, Constants.LC_AMOUNT);
        short a = ISO7816.OFFSET_CDATA;
        // 1 ≤ amount ≤ 2^31−1
        if (Arith.isZero(buf, a, Arith.U32) || Arith.topBitSet(buf, a)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        byte[] s = p.state;
        // The candidate balance goes to the response area right after the amount.
        short out = (short) (a + Arith.U32);
        if (!Money.debit(s, Persistent.OFF_BALANCE, buf, a,
                s, (short) (Persistent.OFF_LIMITS + Constants.LIMITS_OFF_LINE),
                p.hasFlag(Constants.FLAG_PROVISIONAL), buf, out, t)) {
            ISOException.throwIt(Constants.SW_INSUFFICIENT_BALANCE);
        }
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, out, s, Persistent.OFF_BALANCE, Arith.U32);
        JCSystem.commitTransaction();
        Util.arrayCopyNonAtomic(buf, out, buf, a, Arith.U32);
        return Arith.U32;
    }

    /** §4.9 APPLY LIMIT UPDATE. */
    private short processApplyLimitUpdate(byte[] buf, short lc) {
        expectLc(lc, Constants.LIM_LEN);
        short u = ISO7816.OFFSET_CDATA;
        checkHeader(buf, u, Constants.MSG_TYPE_LIMIT_UPDATE);
        short seqOff = (short) (u + Constants.LIM_OFF_SEQ);
        if (!crypto.verify(Crypto.ROLE_GRANT, p.profile(), buf, u, Constants.LIM_OFF_TAG, buf,
                (short) (u + Constants.LIM_OFF_TAG))) {
            fraud(Constants.FRAUD_BAD_TAG, buf, seqOff, Constants.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        byte[] s = p.state;
        if (Arith.compareUnsigned(buf, seqOff, s, Persistent.OFF_LIMIT_SEQ, Arith.U32) <= 0) {
            fraud(Constants.FRAUD_LIMIT_REPLAY, buf, seqOff, Constants.SW_LIMIT_UPDATE_REPLAYED);
        }
        short limits = (short) (u + Constants.LIM_OFF_LIMITS);
        if (!Money.limitsValid(buf, limits)) {
            ISOException.throwIt(Constants.SW_INVALID_LIMITS);
        }
        JCSystem.beginTransaction();
        Util.arrayCopy(buf, limits, s, Persistent.OFF_LIMITS, Constants.LIMITS_LEN);
        Util.arrayCopy(buf, seqOff, s, Persistent.OFF_LIMIT_SEQ, Arith.U32);
        JCSystem.commitTransaction();
        return 0;
    }

    // ---- personalisation ---------------------------------------------------------------------

    /** §4.11 PERSONALISE. */
    private short processPersonalise(byte[] buf, short lc) {
        personaliser.personalise(buf, ISO7816.OFFSET_CDATA, lc);
        return 0;
    }

    /** §4.12 LOCK: one way to operational once everything LOCK needs is there. */
    private short processLock(short lc) {
        expectLc(lc, Constants.LC_NONE);
        if (!p.isPersonalised(Persistent.PERSO_LOCK_NEEDS)) {
            ISOException.throwIt(Constants.SW_PERSONALISATION_INCOMPLETE);
        }
        p.state[Persistent.OFF_LIFECYCLE] = Constants.LIFECYCLE_OPERATIONAL;
        return 0;
    }

    // ---- shared message checks -----------------------------------------------------------------

    private void writeHeader(byte[] out, short off, byte type) {
        out[(short) (off + Constants.MSG_OFF_VERSION)] = Constants.MSG_VERSION;
        out[(short) (off + Constants.MSG_OFF_TYPE)] = type;
        out[(short) (off + Constants.MSG_OFF_ALG)] = p.profile();
        Util.arrayCopyNonAtomic(p.state, Persistent.OFF_MODULE_ID, out, (short) (off + Constants.MSG_OFF_MODULE_ID),
                Constants.MODULE_ID_LEN);
    }

    /** Version, type, algorithm and module id (§4.5 step 1): 9C0A, not registered. */
    private void checkHeader(byte[] buf, short off, byte type) {
        if (buf[(short) (off + Constants.MSG_OFF_VERSION)] != Constants.MSG_VERSION
                || buf[(short) (off + Constants.MSG_OFF_TYPE)] != type
                || buf[(short) (off + Constants.MSG_OFF_ALG)] != p.profile()
                || Util.arrayCompare(buf, (short) (off + Constants.MSG_OFF_MODULE_ID), p.state,
                        Persistent.OFF_MODULE_ID, Constants.MODULE_ID_LEN) != 0) {
            ISOException.throwIt(Constants.SW_MESSAGE_MISMATCH);
        }
    }

    /** S′ = N + 1 in 40 bits, else a registered window event, 9C05. */
    private void checkWindow(byte[] buf, short sOff) {
        Arith.widen(p.state, Persistent.OFF_N, false, t, Transients.OFF_WIDE_A);
        Arith.increment(t, Transients.OFF_WIDE_A);
        Arith.widen(buf, sOff, false, t, Transients.OFF_WIDE_B);
        if (Arith.compare(t, Transients.OFF_WIDE_A, t, Transients.OFF_WIDE_B) != 0) {
            fraud(Constants.FRAUD_WINDOW, buf, sOff, Constants.SW_TRANSACTION_OUT_OF_WINDOW);
        }
    }

    /** Commits the registration (§7), then answers {@code sw}. */
    private void fraud(byte kind, byte[] buf, short carriedOff, short sw) {
        p.registerFraud(kind, buf, carriedOff);
        ISOException.throwIt(sw);
    }
}
