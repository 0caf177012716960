package dev.simkit.backup;

import javacard.framework.APDU;
import javacard.framework.Applet;
import javacard.framework.CardRuntimeException;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.OwnerPIN;
import javacard.framework.Util;
import javacard.security.MessageDigest;
import javacardx.apdu.ExtendedLength;

/**
 * The simkit backup store (applet-spec/backup-store.md): records grouped in categories, described
 * by a manifest of length and SHA-256 per record, committed atomically as numbered generations,
 * guarded by a pairing and a reprovisioning passcode.
 *
 * <p>{@link #process} runs the checks of §4.4 in their order — class, instruction, P1/P2,
 * lengths, pending wipe, lock, passcodes set — then dispatches to {@code processX}, which does
 * the command's own checks (verification, session, store, data, resources) and its effect.
 * COMMIT, SET PASSCODE, CHANGE REFERENCE DATA and ERASE step 1 are each one {@code JCSystem}
 * transaction; everything a session writes before COMMIT is unreferenced and written
 * non-atomically (§8, §10.3). Everything is allocated at install.
 */
public class BackupStore extends Applet implements ExtendedLength {

    private static final byte[] ERASE_CONFIRMATION = {0x45, 0x52, 0x41, 0x53, 0x45};
    private static final byte[] DEFAULT_PARAMS = {0x00, 0x01, 0x00, 0x00, 0x00, (byte) 0x80, 0x05, 0x03};

    private final Persistent p;
    private final Store store;
    private final byte[] t;
    private final MessageDigest sha;
    /** GET MANIFEST DIGEST's own instance: {@link #sha} may hold an open record's running hash. */
    private final MessageDigest tableSha;

    /** Install data (§2.2): empty (defaults) or exactly 8 bytes; anything else fails with 6A80. */
    public static void install(byte[] bArray, short bOffset, byte bLength) {
        new BackupStore(installParams(bArray, bOffset)).register();
    }

    /** The 8 parameter bytes of §2.2 from {@code install}'s data, checked (6A80 when invalid). */
    static byte[] installParams(byte[] bArray, short bOffset) {
        short o = bOffset;
        o = (short) (o + 1 + bArray[o]); // instance AID
        o = (short) (o + 1 + bArray[o]); // control info
        short len = bArray[o];
        byte[] params = new byte[Constants.INSTALL_LEN];
        if (len == 0) {
            Util.arrayCopyNonAtomic(DEFAULT_PARAMS, (short) 0, params, (short) 0, Constants.INSTALL_LEN);
        } else if (len == Constants.INSTALL_LEN) {
            Util.arrayCopyNonAtomic(bArray, (short) (o + 1), params, (short) 0, Constants.INSTALL_LEN);
        } else {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        if (params[Persistent.PARAM_CAPACITY] < 0 || U32.isZero(params, Persistent.PARAM_CAPACITY)
                || Util.getShort(params, Persistent.PARAM_MAX_RECORDS) <= 0
                || !validTries(params[Persistent.PARAM_PAIRING_TRIES])
                || !validTries(params[Persistent.PARAM_REPROVISIONING_TRIES])) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        return params;
    }

    private static boolean validTries(byte b) {
        return b >= 1 && b <= Constants.TRY_LIMIT_MAX;
    }

    protected BackupStore(byte[] params) {
        Transients transients = new Transients();
        t = transients.buf;
        p = new Persistent(params);
        store = new Store(params, Persistent.PARAM_CAPACITY, Util.getShort(params, Persistent.PARAM_MAX_RECORDS), t);
        sha = MessageDigest.getInstance(MessageDigest.ALG_SHA_256, false);
        tableSha = MessageDigest.getInstance(MessageDigest.ALG_SHA_256, false);
    }

    /**
     * {@code setIncomingAndReceive}, and below {@code receiveBytes}: every byte of a data field
     * enters through these two. They are package-private and overridable for one reason: jCardSim
     * hands an applet the whole data field in its first piece, so the in-process tests substitute
     * a subclass that delivers it in small pieces, to drive the parsers across piece boundaries
     * the way a card with a small APDU buffer does.
     */
    short receiveFirst(APDU apdu) {
        return apdu.setIncomingAndReceive();
    }

    /** {@code receiveBytes(off)}: the next piece of the data field, at {@code off}. */
    short receiveMore(APDU apdu, short off) {
        return apdu.receiveBytes(off);
    }

    @Override
    public boolean select() {
        // §5.1: true in every state; selection starts with nothing verified and no session.
        p.pairing.reset();
        p.reprovisioning.reset();
        endSession();
        return true;
    }

    @Override
    public void deselect() {
        p.pairing.reset();
        p.reprovisioning.reset();
    }

    @Override
    public void process(APDU apdu) {
        if (selectingApplet()) {
            return;
        }
        byte[] buf = apdu.getBuffer();
        // Any command ends a chain in progress; only a successful chained WRITE DATA restarts it.
        byte chainWas = t[Transients.OFF_CHAIN];
        t[Transients.OFF_CHAIN] = 0;
        // 1. Class.
        byte cla = (byte) (buf[ISO7816.OFFSET_CLA] & Constants.CLA_MASK_CHANNEL);
        if (cla != Constants.CLA_ISO && cla != Constants.CLA_ISO_CHAIN && cla != Constants.CLA_PROPRIETARY
                && cla != Constants.CLA_PROPRIETARY_CHAIN) {
            ISOException.throwIt(Constants.SW_CLA_NOT_SUPPORTED);
        }
        byte ins = buf[ISO7816.OFFSET_INS];
        boolean iso = (byte) (cla & ~Constants.CLA_CHAIN_BIT) == Constants.CLA_ISO;
        if (iso && ins == Constants.INS_SELECT) {
            // A SELECT the runtime passed on: it does not select this applet.
            ISOException.throwIt(Constants.SW_FILE_NOT_FOUND);
        }
        // 2. Instruction, with its class; chaining only on WRITE DATA.
        boolean isoIns = ins == Constants.INS_VERIFY || ins == Constants.INS_CHANGE_REFERENCE_DATA;
        if (!isoIns && !knownProprietary(ins) || iso != isoIns) {
            ISOException.throwIt(Constants.SW_INS_NOT_SUPPORTED);
        }
        boolean chained = (cla & Constants.CLA_CHAIN_BIT) != 0;
        if (chained && ins != Constants.INS_WRITE_DATA) {
            ISOException.throwIt(Constants.SW_CHAINING_NOT_SUPPORTED);
        }
        // 3. P1/P2.
        checkP1P2(ins, buf[ISO7816.OFFSET_P1], buf[ISO7816.OFFSET_P2]);
        // 4. Lengths (Nc, Ne).
        short got = receiveFirst(apdu);
        short nc = apdu.getIncomingLength();
        short off = apdu.getOffsetCdata();
        // WRITE DATA and WRITE RECORDS take their data field piece by piece, as it arrives.
        if (ins != Constants.INS_WRITE_DATA && ins != Constants.INS_WRITE_RECORDS) {
            while (got < nc) {
                got = (short) (got + receiveMore(apdu, (short) (off + got)));
            }
        }
        short ne = checkLengths(apdu, ins, buf[ISO7816.OFFSET_P1], nc, chainWas != 0);
        // 5. Pending wipe.
        if (p.state[Persistent.OFF_WIPE_PENDING] != 0) {
            completeWipe();
        }
        // 6. Lock.
        if (ins != Constants.INS_GET_STATUS && ins != Constants.INS_ERASE && p.isLocked()) {
            ISOException.throwIt(Constants.SW_AUTHENTICATION_METHOD_BLOCKED);
        }
        // 7. Passcodes set (VERIFY / CHANGE REFERENCE DATA: the named one only).
        if (isoIns) {
            if (!p.isSet(buf[ISO7816.OFFSET_P2])) {
                ISOException.throwIt(Constants.SW_PASSCODE_NOT_SET);
            }
        } else if (ins != Constants.INS_GET_STATUS && ins != Constants.INS_SET_PASSCODE
                && ins != Constants.INS_ERASE) {
            if (!p.isSet(Constants.P2_PAIRING) || !p.isSet(Constants.P2_REPROVISIONING)) {
                ISOException.throwIt(Constants.SW_PASSCODE_NOT_SET);
            }
        }
        switch (ins) {
            case Constants.INS_GET_STATUS:
                processGetStatus(apdu, buf);
                break;
            case Constants.INS_SET_PASSCODE:
                processSetPasscode(buf, off, nc);
                break;
            case Constants.INS_VERIFY:
                processVerify(buf, off, nc);
                break;
            case Constants.INS_CHANGE_REFERENCE_DATA:
                processChangeReferenceData(buf, off, nc);
                break;
            case Constants.INS_GET_MANIFEST:
                processGetManifest(apdu, buf, ne);
                break;
            case Constants.INS_BEGIN_SESSION:
                processBeginSession(buf, off);
                break;
            case Constants.INS_BEGIN_RECORD:
                processBeginRecord(buf, off, nc);
                break;
            case Constants.INS_WRITE_DATA:
                processWriteData(apdu, buf, off, nc, got, chainWas != 0, chained);
                break;
            case Constants.INS_END_RECORD:
                processEndRecord();
                break;
            case Constants.INS_DELETE_RECORD:
                processDeleteRecord(buf, off, nc);
                break;
            case Constants.INS_COMMIT:
                processCommit(apdu, buf, off);
                break;
            case Constants.INS_WRITE_RECORDS:
                processWriteRecords(apdu, buf, off, nc, got);
                break;
            case Constants.INS_ABORT:
                processAbort();
                break;
            case Constants.INS_READ_DATA:
                processReadData(apdu, buf, off, nc, ne);
                break;
            case Constants.INS_GET_MANIFEST_DIGEST:
                processGetManifestDigest(apdu, buf);
                break;
            default: // INS_ERASE
                processErase(buf, off);
                break;
        }
    }

    private static boolean knownProprietary(byte ins) {
        switch (ins) {
            case Constants.INS_GET_STATUS:
            case Constants.INS_SET_PASSCODE:
            case Constants.INS_GET_MANIFEST:
            case Constants.INS_BEGIN_SESSION:
            case Constants.INS_BEGIN_RECORD:
            case Constants.INS_WRITE_DATA:
            case Constants.INS_END_RECORD:
            case Constants.INS_DELETE_RECORD:
            case Constants.INS_COMMIT:
            case Constants.INS_ABORT:
            case Constants.INS_READ_DATA:
            case Constants.INS_ERASE:
            case Constants.INS_GET_MANIFEST_DIGEST:
            case Constants.INS_WRITE_RECORDS:
                return true;
            default:
                return false;
        }
    }

    /** §4.4 step 3, per the §5.0 table. */
    private static void checkP1P2(byte ins, byte p1, byte p2) {
        boolean ok;
        boolean p2Passcode = p2 == Constants.P2_PAIRING || p2 == Constants.P2_REPROVISIONING;
        switch (ins) {
            case Constants.INS_SET_PASSCODE:
            case Constants.INS_VERIFY:
                ok = p1 == 0 && p2Passcode;
                break;
            case Constants.INS_CHANGE_REFERENCE_DATA:
                ok = p1 == Constants.P1_NEW_REFERENCE_ONLY && p2Passcode;
                break;
            case Constants.INS_GET_MANIFEST:
                ok = true; // start index
                break;
            case Constants.INS_BEGIN_SESSION:
                ok = (p1 == Constants.P1_SESSION_FULL || p1 == Constants.P1_SESSION_INCREMENTAL) && p2 == 0;
                break;
            case Constants.INS_COMMIT:
                ok = (p1 == Constants.P1_COMMIT_PLAIN || p1 == Constants.P1_COMMIT_VERIFIED) && p2 == 0;
                break;
            default:
                ok = p1 == 0 && p2 == 0;
                break;
        }
        if (!ok) {
            ISOException.throwIt(Constants.SW_INCORRECT_P1P2);
        }
    }

    /** §4.4 step 4: Nc range and Ne minimum per command; answers Ne (capped) for data commands. */
    private static short checkLengths(APDU apdu, byte ins, byte p1, short nc, boolean chainInProgress) {
        short min = 0;
        short max = 0;
        short neMin = 0;
        switch (ins) {
            case Constants.INS_GET_STATUS:
                neMin = Constants.STATUS_LEN;
                break;
            case Constants.INS_SET_PASSCODE:
            case Constants.INS_CHANGE_REFERENCE_DATA:
                min = Constants.PASSCODE_MIN;
                max = Constants.PASSCODE_MAX;
                break;
            case Constants.INS_VERIFY:
                if (nc == 0) {
                    return 0;
                }
                min = Constants.PASSCODE_MIN;
                max = Constants.PASSCODE_MAX;
                break;
            case Constants.INS_GET_MANIFEST:
                neMin = Constants.MANIFEST_HEADER_LEN;
                break;
            case Constants.INS_BEGIN_SESSION:
                if (p1 == Constants.P1_SESSION_INCREMENTAL) {
                    min = Constants.BASE_LEN;
                    max = Constants.BASE_LEN;
                }
                break;
            case Constants.INS_BEGIN_RECORD:
                min = (short) (Constants.ENTRY_FIXED + 1);
                max = Constants.ENTRY_MAX;
                break;
            case Constants.INS_WRITE_DATA:
                min = chainInProgress ? 1 : Constants.OFFSET_LEN;
                max = Constants.MAX_DATA;
                break;
            case Constants.INS_DELETE_RECORD:
                min = (short) (Constants.ID_FIXED + 1);
                max = (short) (Constants.ID_FIXED + Constants.NAME_MAX);
                break;
            case Constants.INS_COMMIT:
                if (p1 == Constants.P1_COMMIT_VERIFIED) {
                    min = Constants.DIGEST_LEN;
                    max = Constants.DIGEST_LEN;
                }
                neMin = Constants.GENERATION_LEN;
                break;
            case Constants.INS_WRITE_RECORDS:
                min = (short) (Constants.ENTRY_FIXED + 1);
                max = Constants.MAX_DATA;
                break;
            case Constants.INS_GET_MANIFEST_DIGEST:
                neMin = Constants.MANIFEST_DIGEST_LEN;
                break;
            case Constants.INS_READ_DATA:
                min = (short) (Constants.ID_FIXED + 1 + Constants.OFFSET_LEN);
                max = (short) (Constants.ID_FIXED + Constants.NAME_MAX + Constants.OFFSET_LEN);
                neMin = 1;
                break;
            case Constants.INS_ERASE:
                min = Constants.ERASE_LEN;
                max = Constants.ERASE_LEN;
                break;
            default: // END RECORD, ABORT: no data
                break;
        }
        if (nc < min || nc > max) {
            ISOException.throwIt(Constants.SW_WRONG_LENGTH);
        }
        if (neMin == 0) {
            return 0;
        }
        short ne = apdu.setOutgoing();
        if (ne < 0 || ne > Constants.MAX_DATA) {
            ne = Constants.MAX_DATA; // extended Le 0000 (65 536) or above 7FFF
        }
        if (ne < neMin) {
            ISOException.throwIt(Constants.SW_WRONG_LENGTH);
        }
        return ne;
    }

    // ---- security state ---------------------------------------------------------------------

    private boolean pairingVerified() {
        return p.pairing.isValidated();
    }

    private void requirePairing() {
        if (!pairingVerified()) {
            ISOException.throwIt(Constants.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
    }

    private byte session() {
        return t[Transients.OFF_SESSION];
    }

    private boolean recordOpen() {
        return t[Transients.OFF_RECORD_OPEN] != 0;
    }

    /** Session, open record and chain discarded (ABORT, 9D02, 9D06, failed pairing VERIFY). */
    private void endSession() {
        t[Transients.OFF_SESSION] = Constants.SESSION_NONE;
        t[Transients.OFF_RECORD_OPEN] = 0;
        t[Transients.OFF_CHAIN] = 0;
        Util.setShort(t, Transients.OFF_STAGE_COUNT, (short) 0);
        Util.arrayFillNonAtomic(t, Transients.OFF_STAGED, U32.LEN, (byte) 0);
    }

    private void endSessionAndThrow(short sw) {
        endSession();
        ISOException.throwIt(sw);
    }

    private Object[] stagingTable() {
        return store.table((byte) (1 - p.selector()));
    }

    private Object[] activeTable() {
        return store.table(p.selector());
    }

    private short stageCount() {
        return Util.getShort(t, Transients.OFF_STAGE_COUNT);
    }

    // ---- §5.2 GET STATUS --------------------------------------------------------------------

    private void processGetStatus(APDU apdu, byte[] buf) {
        boolean details = pairingVerified();
        Util.arrayFillNonAtomic(buf, (short) 0, Constants.STATUS_LEN, (byte) 0);
        buf[0] = Constants.STATUS_VERSION;
        Util.arrayCopyNonAtomic(p.params, Persistent.PARAM_CAPACITY, buf, (short) 5, U32.LEN);
        // Without details, free reads as the capacity (capacity − hidden U of 0), which is what
        // the worked example (§9 step 2, vectors/backup-store.json) answers; §5.2 † says 0.
        // Reported to the lead as a spec/vector conflict; the vector wins here (byte for byte).
        Util.arrayCopyNonAtomic(p.params, Persistent.PARAM_CAPACITY, buf, (short) 13, U32.LEN);
        if (details) {
            Util.arrayCopyNonAtomic(p.state, Persistent.OFF_ACTIVE_GEN, buf, (short) 1, U32.LEN);
            Util.arrayCopyNonAtomic(p.state, Persistent.OFF_USED, buf, (short) 9, U32.LEN);
            // free = capacity − (U + S + O)
            U32.sub(buf, (short) 13, p.state, Persistent.OFF_USED);
            U32.sub(buf, (short) 13, t, Transients.OFF_STAGED);
            if (recordOpen()) {
                U32.sub(buf, (short) 13, t, openLengthOff());
            }
            Util.setShort(buf, (short) 17, p.activeCount());
        }
        Util.arrayCopyNonAtomic(p.params, Persistent.PARAM_MAX_RECORDS, buf, (short) 19, (short) 2);
        Util.setShort(buf, (short) 21, Constants.MAX_DATA);
        Util.setShort(buf, (short) 23, Constants.MAX_DATA);
        buf[25] = p.triesLeft(Constants.P2_PAIRING);
        buf[26] = p.triesLeft(Constants.P2_REPROVISIONING);
        byte flags = 0;
        if (p.isSet(Constants.P2_PAIRING)) {
            flags |= Constants.FLAG_PAIRING_SET;
        }
        if (p.isSet(Constants.P2_REPROVISIONING)) {
            flags |= Constants.FLAG_REPROVISIONING_SET;
        }
        if (pairingVerified()) {
            flags |= Constants.FLAG_PAIRING_VERIFIED;
        }
        if (p.reprovisioning.isValidated()) {
            flags |= Constants.FLAG_REPROVISIONING_VERIFIED;
        }
        if (session() != Constants.SESSION_NONE) {
            flags |= Constants.FLAG_SESSION;
            if (session() == Constants.SESSION_INCREMENTAL) {
                flags |= Constants.FLAG_INCREMENTAL;
            }
        }
        if (recordOpen()) {
            flags |= Constants.FLAG_RECORD_OPEN;
        }
        buf[27] = flags;
        apdu.setOutgoingLength(Constants.STATUS_LEN);
        apdu.sendBytes((short) 0, Constants.STATUS_LEN);
    }

    // ---- §5.3–§5.5 passcodes ----------------------------------------------------------------

    private void processSetPasscode(byte[] buf, short off, short nc) {
        byte which = buf[ISO7816.OFFSET_P2];
        if (p.isSet(which)) {
            ISOException.throwIt(Constants.SW_CONDITIONS_OF_USE_NOT_SATISFIED);
        }
        JCSystem.beginTransaction();
        p.pin(which).update(buf, off, (byte) nc);
        p.state[which == Constants.P2_PAIRING ? Persistent.OFF_PAIRING_SET : Persistent.OFF_REPROVISIONING_SET] = 1;
        JCSystem.commitTransaction();
    }

    private void processVerify(byte[] buf, short off, short nc) {
        byte which = buf[ISO7816.OFFSET_P2];
        OwnerPIN pin = p.pin(which);
        if (nc == 0) {
            if (!pin.isValidated()) {
                ISOException.throwIt((short) (Constants.VERIFY_FAILED_BASE | pin.getTriesRemaining()));
            }
            return;
        }
        if (which == Constants.P2_REPROVISIONING) {
            requirePairing();
        }
        if (pin.check(buf, off, (byte) nc)) {
            return;
        }
        byte left = pin.getTriesRemaining();
        // §4.1: a failed pairing VERIFY, or any passcode becoming blocked, clears both verified
        // flags and discards the session.
        if (which == Constants.P2_PAIRING || left == 0) {
            p.pairing.reset();
            p.reprovisioning.reset();
            endSession();
        }
        ISOException.throwIt((short) (Constants.VERIFY_FAILED_BASE | left));
    }

    private void processChangeReferenceData(byte[] buf, short off, short nc) {
        byte which = buf[ISO7816.OFFSET_P2];
        OwnerPIN pin = p.pin(which);
        if (!pin.isValidated()) {
            ISOException.throwIt(Constants.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        JCSystem.beginTransaction();
        pin.update(buf, off, (byte) nc);
        JCSystem.commitTransaction();
        // update() clears the validated flag; the passcode stays verified (§5.5).
        pin.check(buf, off, (byte) nc);
    }

    // ---- §5.6 GET MANIFEST ------------------------------------------------------------------

    private void processGetManifest(APDU apdu, byte[] buf, short ne) {
        requirePairing();
        if (!p.hasGeneration()) {
            ISOException.throwIt(Constants.SW_STORE_EMPTY);
        }
        short start = Util.getShort(buf, ISO7816.OFFSET_P1);
        short total = p.activeCount();
        if (start < 0 || start > total) {
            ISOException.throwIt(Constants.SW_INCORRECT_P1P2);
        }
        Object[] table = activeTable();
        short room = (short) (ne - Constants.MANIFEST_HEADER_LEN);
        short bytes = 0;
        short count = 0;
        for (short i = start; i < total; i++) {
            short len = Store.manifestLen(Store.entry(table, i));
            if ((short) (bytes + len) > room) {
                break;
            }
            bytes = (short) (bytes + len);
            count++;
        }
        if (start < total && count == 0) {
            ISOException.throwIt(Constants.SW_WRONG_LENGTH);
        }
        Util.arrayCopyNonAtomic(p.state, Persistent.OFF_ACTIVE_GEN, buf, (short) 0, U32.LEN);
        Util.setShort(buf, (short) 4, total);
        Util.setShort(buf, (short) 6, count);
        apdu.setOutgoingLength((short) (Constants.MANIFEST_HEADER_LEN + bytes));
        apdu.sendBytes((short) 0, Constants.MANIFEST_HEADER_LEN);
        for (short i = start; i < (short) (start + count); i++) {
            byte[] e = Store.entry(table, i);
            apdu.sendBytesLong(e, (short) 0, Store.manifestLen(e));
        }
    }

    // ---- §5.16 GET MANIFEST DIGEST -----------------------------------------------------------

    private void processGetManifestDigest(APDU apdu, byte[] buf) {
        requirePairing();
        if (!p.hasGeneration()) {
            ISOException.throwIt(Constants.SW_STORE_EMPTY);
        }
        short total = p.activeCount();
        Util.arrayCopyNonAtomic(p.state, Persistent.OFF_ACTIVE_GEN, buf, (short) 0, U32.LEN);
        Util.setShort(buf, (short) 4, total);
        tableDigest(activeTable(), total, buf, (short) 6);
        apdu.setOutgoingLength(Constants.MANIFEST_DIGEST_LEN);
        apdu.sendBytes((short) 0, Constants.MANIFEST_DIGEST_LEN);
    }

    /**
     * SHA-256 of the manifest entries 0..count−1 of {@code table} concatenated in table order
     * (§5.16), into {@code out} at {@code outOff}: GET MANIFEST DIGEST of the active table and the
     * verified COMMIT of the staging table compute the same function. Uses {@link #tableSha}, so
     * an open record's running hash is left alone.
     */
    private void tableDigest(Object[] table, short count, byte[] out, short outOff) {
        tableSha.reset();
        for (short i = 0; i < count; i++) {
            byte[] e = Store.entry(table, i);
            tableSha.update(e, (short) 0, Store.manifestLen(e));
        }
        tableSha.doFinal(out, (short) 0, (short) 0, out, outOff);
    }

    // ---- §5.7 BEGIN SESSION -----------------------------------------------------------------

    private void processBeginSession(byte[] buf, short off) {
        requirePairing();
        if (session() != Constants.SESSION_NONE) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        boolean incremental = buf[ISO7816.OFFSET_P1] == Constants.P1_SESSION_INCREMENTAL;
        if (incremental) {
            if (!p.hasGeneration()) {
                ISOException.throwIt(Constants.SW_STORE_EMPTY);
            }
            if (U32.compare(buf, off, p.state, Persistent.OFF_ACTIVE_GEN) != 0) {
                ISOException.throwIt(Constants.SW_CONDITIONS_OF_USE_NOT_SATISFIED);
            }
        }
        if (U32.isAllOnes(p.state, Persistent.OFF_LAST_GEN)) {
            ISOException.throwIt(Constants.SW_CONDITIONS_OF_USE_NOT_SATISFIED);
        }
        // The free map from the active table alone (§10.3).
        store.clearUsed();
        Object[] active = activeTable();
        short count = p.activeCount();
        for (short i = 0; i < count; i++) {
            store.markChain(Store.first(Store.entry(active, i)), true);
        }
        // A torn rotation of an earlier session (Store.remove) may have left the staging table
        // with one entry object at two positions: every position gets its own object again.
        store.resetSlots((byte) (1 - p.selector()));
        short staged = 0;
        if (incremental) {
            Object[] staging = stagingTable();
            for (short i = 0; i < count; i++) {
                byte[] dst = Store.entry(staging, i);
                Util.arrayCopyNonAtomic(Store.entry(active, i), (short) 0, dst, (short) 0, Store.ENTRY_LEN);
                dst[Store.ENTRY_OFF_FRESH] = 0;
            }
            staged = count;
        }
        endSession();
        Util.setShort(t, Transients.OFF_STAGE_COUNT, staged);
        t[Transients.OFF_SESSION] = incremental ? Constants.SESSION_INCREMENTAL : Constants.SESSION_FULL;
    }

    // ---- §5.8 BEGIN RECORD ------------------------------------------------------------------

    private short openLengthOff() {
        return (short) (Transients.OFF_OPEN_ENTRY + Constants.ID_FIXED + t[(short) (Transients.OFF_OPEN_ENTRY + 1)]);
    }

    private void requireSession() {
        requirePairing();
        if (session() == Constants.SESSION_NONE) {
            ISOException.throwIt(Constants.SW_NO_SESSION);
        }
    }

    private static void checkId(byte[] buf, short off, short n) {
        if (!Names.validCategory(buf[off]) || !Names.validName(buf, (short) (off + Constants.ID_FIXED), n)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
    }

    private void processBeginRecord(byte[] buf, short off, short nc) {
        requireSession();
        if (recordOpen()) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        short n = buf[(short) (off + 1)];
        if (n != (short) (nc - Constants.ENTRY_FIXED)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        checkId(buf, off, n);
        openRecord(buf, off);
    }

    /**
     * BEGIN RECORD's resource checks (§4.4 step 12: 9D06, then 9D02; both end the session) and
     * effect for the manifest entry at {@code src[off]}, whose lengths and id the caller checked:
     * L bytes reserved, the record open with W = 0 and a fresh SHA-256. The one way a record is
     * opened, for BEGIN RECORD and for each record of WRITE RECORDS — which gathers the entry in
     * place at {@code Transients.OFF_OPEN_ENTRY}, so nothing is copied then. S counts every record
     * staged earlier in the session, by earlier commands or earlier in the same one (§3.5).
     */
    private void openRecord(byte[] src, short off) {
        short n = src[(short) (off + 1)];
        Object[] staging = stagingTable();
        short count = stageCount();
        short same = Store.find(staging, count, src, off);
        if (same < 0 && count >= store.maxRecords) {
            endSessionAndThrow(Constants.SW_TOO_MANY_RECORDS);
        }
        // U + S + L ≤ capacity, as L ≤ capacity − U − S.
        short lenOff = (short) (off + Constants.ID_FIXED + n);
        Util.arrayCopyNonAtomic(p.params, Persistent.PARAM_CAPACITY, t, Transients.OFF_R1, U32.LEN);
        U32.sub(t, Transients.OFF_R1, p.state, Persistent.OFF_USED);
        U32.sub(t, Transients.OFF_R1, t, Transients.OFF_STAGED);
        if (U32.compare(src, lenOff, t, Transients.OFF_R1) > 0) {
            endSessionAndThrow(Constants.SW_CAPACITY_EXCEEDED);
        }
        short first = store.allocate(store.blocksFor(src, lenOff));
        if (first == -2) {
            endSessionAndThrow(Constants.SW_CAPACITY_EXCEEDED); // cannot happen (§10.2 sizing)
        }
        if (src != t || off != Transients.OFF_OPEN_ENTRY) {
            Util.arrayCopyNonAtomic(src, off, t, Transients.OFF_OPEN_ENTRY, (short) (Constants.ENTRY_FIXED + n));
        }
        Util.setShort(t, (short) (Transients.OFF_OPEN_ENTRY + Store.ENTRY_OFF_FIRST), first);
        t[(short) (Transients.OFF_OPEN_ENTRY + Store.ENTRY_OFF_FRESH)] = 1;
        t[(short) (Transients.OFF_OPEN_ENTRY + Store.ENTRY_OFF_HASH)] = Store.idHash(t, Transients.OFF_OPEN_ENTRY);
        Util.arrayFillNonAtomic(t, Transients.OFF_WRITTEN, U32.LEN, (byte) 0);
        Util.setShort(t, Transients.OFF_CUR_BLOCK, first);
        Util.setShort(t, Transients.OFF_CUR_OFF, (short) 0);
        // The staging table cannot change while the record is open (DELETE RECORD and WRITE
        // RECORDS answer 9D04), so END RECORD reuses this search instead of repeating it.
        Util.setShort(t, Transients.OFF_SAME_ID, same);
        sha.reset();
        t[Transients.OFF_RECORD_OPEN] = 1;
    }

    // ---- §5.9 WRITE DATA --------------------------------------------------------------------

    private void processWriteData(APDU apdu, byte[] buf, short off, short nc, short got, boolean continuing,
            boolean chained) {
        requireSession();
        if (!recordOpen()) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        short n = nc;
        short at = off;
        if (!continuing) {
            // The offset itself may straddle receive pieces (Nc ≥ 4 was checked).
            while (got < U32.LEN) {
                got = (short) (got + receiveMore(apdu, (short) (off + got)));
            }
            if (Util.arrayCompare(buf, off, t, Transients.OFF_WRITTEN, U32.LEN) != 0) {
                ISOException.throwIt(Constants.SW_INCORRECT_DATA);
            }
            n = (short) (n - U32.LEN);
            at = (short) (at + U32.LEN);
            got = (short) (got - U32.LEN);
        }
        // W + n ≤ L, as n ≤ L − W.
        Util.arrayCopyNonAtomic(t, openLengthOff(), t, Transients.OFF_R1, U32.LEN);
        U32.sub(t, Transients.OFF_R1, t, Transients.OFF_WRITTEN);
        if (!U32.atLeast(t, Transients.OFF_R1, n)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        // Store each piece as it arrives: the APDU buffer never has to hold the whole command.
        while (n > 0) {
            if (got > 0) {
                store.write(buf, at, got);
                sha.update(buf, at, got);
                U32.addShort(t, Transients.OFF_WRITTEN, got);
                n = (short) (n - got);
            }
            if (n > 0) {
                got = receiveMore(apdu, off);
                at = off;
            }
        }
        if (chained) {
            t[Transients.OFF_CHAIN] = 1;
        }
    }

    // ---- §5.10 END RECORD -------------------------------------------------------------------

    private void processEndRecord() {
        requireSession();
        if (!recordOpen()) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        if (U32.compare(t, Transients.OFF_WRITTEN, t, openLengthOff()) < 0) {
            ISOException.throwIt(Constants.SW_RECORD_INCOMPLETE);
        }
        stageOpenRecord();
    }

    /**
     * END RECORD's effect (§5.10) once the open record's L bytes are written: its SHA-256 checked
     * (9D03 discards the record and releases its blocks) and its entry staged (§3.4: an entry with
     * the same id removed, releasing its bytes if written in this session; the new one appended).
     * The one staging path, for END RECORD and for each record of WRITE RECORDS.
     */
    private void stageOpenRecord() {
        short lenOff = openLengthOff();
        sha.doFinal(t, Transients.OFF_DIGEST, (short) 0, t, Transients.OFF_DIGEST);
        short first = Util.getShort(t, (short) (Transients.OFF_OPEN_ENTRY + Store.ENTRY_OFF_FIRST));
        t[Transients.OFF_RECORD_OPEN] = 0;
        if (Util.arrayCompare(t, Transients.OFF_DIGEST, t, (short) (lenOff + U32.LEN), Constants.DIGEST_LEN) != 0) {
            store.markChain(first, false);
            ISOException.throwIt(Constants.SW_DIGEST_MISMATCH);
        }
        Object[] staging = stagingTable();
        short count = stageCount();
        short i = Util.getShort(t, Transients.OFF_SAME_ID);
        if (i >= 0) {
            releaseStaged(staging, count, i);
            count--;
        }
        // The manifest entry (38 + n bytes) and the first block / fresh flag: a short name does not
        // cost a full-size entry of persistent writes.
        byte[] dst = Store.entry(staging, count);
        Util.arrayCopyNonAtomic(t, Transients.OFF_OPEN_ENTRY, dst, (short) 0, (short) (lenOff + U32.LEN
                + Constants.DIGEST_LEN - Transients.OFF_OPEN_ENTRY));
        Util.arrayCopyNonAtomic(t, (short) (Transients.OFF_OPEN_ENTRY + Store.ENTRY_OFF_FIRST), dst,
                Store.ENTRY_OFF_FIRST, (short) (Store.ENTRY_LEN - Store.ENTRY_OFF_FIRST));
        U32.add(t, Transients.OFF_STAGED, t, lenOff);
        Util.setShort(t, Transients.OFF_STAGE_COUNT, (short) (count + 1));
    }

    /** Removes staging entry i; a record written in this session gives its blocks and bytes back. */
    private void releaseStaged(Object[] staging, short count, short i) {
        byte[] e = Store.entry(staging, i);
        if (e[Store.ENTRY_OFF_FRESH] != 0) {
            store.markChain(Store.first(e), false);
            U32.sub(t, Transients.OFF_STAGED, e, Store.lengthOff(e));
        }
        Store.remove(staging, count, i);
    }

    // ---- §5.17 WRITE RECORDS -----------------------------------------------------------------

    /**
     * Records (entry ‖ L bytes)… parsed as the data field arrives, one piece per receive: each
     * entry is gathered in place at {@code Transients.OFF_OPEN_ENTRY} (it may straddle pieces),
     * checked as BEGIN RECORD checks it, opened by {@link #openRecord}, its L bytes streamed into
     * the store and the record's SHA-256 straight from the APDU buffer, and staged by
     * {@link #stageOpenRecord} — exactly BEGIN RECORD + WRITE DATA + END RECORD, with no copy of
     * the data. W is not advanced: the parser's own count says when L bytes were written.
     * Any refusal of a record (6A80, 9D06, 9D02, 9D03) ends the session as ABORT (§5.17); the
     * checks before the records (9D01, 9D04) change nothing.
     */
    private void processWriteRecords(APDU apdu, byte[] buf, short off, short nc, short got) {
        requireSession();
        if (recordOpen()) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        try {
            parseRecords(apdu, buf, off, nc, got);
        } catch (CardRuntimeException e) {
            // ISOException (a refused record) and anything else: the session ends, the status
            // word (or the exception) goes out unchanged.
            endSession();
            throw e;
        }
    }

    private void parseRecords(APDU apdu, byte[] buf, short off, short nc, short got) {
        short left = nc; // data-field bytes not yet consumed (received or not)
        short at = off; // next unconsumed byte in buf
        short have = got; // received bytes from at on
        short gathered = 0; // bytes of the current entry at OFF_OPEN_ENTRY
        short need = Constants.ID_FIXED; // entry bytes wanted: category ‖ n first, then 38 + n
        short data = -1; // record bytes still to stream; −1 while an entry is being gathered
        while (true) {
            if (data == 0) {
                stageOpenRecord();
                data = -1;
                gathered = 0;
                need = Constants.ID_FIXED;
            }
            if (have == 0) {
                if (left == 0) {
                    break;
                }
                have = receiveMore(apdu, off);
                at = off;
                if (have <= 0) {
                    ISOException.throwIt(Constants.SW_WRONG_LENGTH); // fewer bytes than Lc
                }
            }
            short k;
            if (data > 0) {
                k = data < have ? data : have;
                store.write(buf, at, k);
                sha.update(buf, at, k);
                data = (short) (data - k);
            } else {
                k = (short) (need - gathered);
                if (k > have) {
                    k = have;
                }
                Util.arrayCopyNonAtomic(buf, at, t, (short) (Transients.OFF_OPEN_ENTRY + gathered), k);
                gathered = (short) (gathered + k);
            }
            at = (short) (at + k);
            have = (short) (have - k);
            left = (short) (left - k);
            if (data < 0 && gathered == need) {
                data = entryGathered(need == Constants.ID_FIXED, left);
                if (data < 0) {
                    need = (short) (Constants.ENTRY_FIXED + t[(short) (Transients.OFF_OPEN_ENTRY + 1)]);
                }
            }
        }
        if (gathered != 0) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA); // an entry runs past the data field
        }
    }

    /**
     * The gathered part of an entry is complete. After category ‖ n ({@code head}): checks the
     * name length and that the entry fits in the {@code left} bytes of the data field, and answers
     * −1 (gather the rest). After the whole entry: checks it as BEGIN RECORD does (§4.4 step 11,
     * then L bytes within the data field), opens the record and answers L.
     */
    private short entryGathered(boolean head, short left) {
        short e = Transients.OFF_OPEN_ENTRY;
        short n = t[(short) (e + 1)];
        if (head) {
            // Name length out of range, or the rest of the entry (36 + n bytes) past the data field.
            if (n < 1 || n > Constants.NAME_MAX
                    || (short) (Constants.ENTRY_FIXED - Constants.ID_FIXED + n) > left) {
                ISOException.throwIt(Constants.SW_INCORRECT_DATA);
            }
            return -1;
        }
        checkId(t, e, n);
        short lenOff = (short) (e + Constants.ID_FIXED + n);
        if (U32.atLeast(t, lenOff, (short) (left + 1))) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA); // L bytes run past the data field
        }
        openRecord(t, e);
        return U32.low(t, lenOff);
    }

    // ---- §5.11 DELETE RECORD ----------------------------------------------------------------

    private void processDeleteRecord(byte[] buf, short off, short nc) {
        requireSession();
        if (session() != Constants.SESSION_INCREMENTAL || recordOpen()) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        short n = buf[(short) (off + 1)];
        if (n != (short) (nc - Constants.ID_FIXED)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        checkId(buf, off, n);
        Object[] staging = stagingTable();
        short count = stageCount();
        short i = Store.find(staging, count, buf, off);
        if (i < 0) {
            ISOException.throwIt(Constants.SW_REFERENCED_DATA_NOT_FOUND);
        }
        releaseStaged(staging, count, i);
        Util.setShort(t, Transients.OFF_STAGE_COUNT, (short) (count - 1));
    }

    // ---- §5.12 COMMIT -----------------------------------------------------------------------

    private void processCommit(APDU apdu, byte[] buf, short off) {
        requireSession();
        if (recordOpen()) {
            ISOException.throwIt(Constants.SW_SESSION_STATE);
        }
        Object[] staging = stagingTable();
        short count = stageCount();
        if (buf[ISO7816.OFFSET_P1] == Constants.P1_COMMIT_VERIFIED) {
            // The digest is public data (a hash of the manifest the host built): no constant time.
            tableDigest(staging, count, t, Transients.OFF_DIGEST);
            if (Util.arrayCompare(t, Transients.OFF_DIGEST, buf, off, Constants.DIGEST_LEN) != 0) {
                endSessionAndThrow(Constants.SW_TABLE_MISMATCH);
            }
        }
        // R1 = U of the new table, R2 = last + 1.
        Util.arrayFillNonAtomic(t, Transients.OFF_R1, U32.LEN, (byte) 0);
        for (short i = 0; i < count; i++) {
            byte[] e = Store.entry(staging, i);
            U32.add(t, Transients.OFF_R1, e, Store.lengthOff(e));
        }
        Util.arrayCopyNonAtomic(p.state, Persistent.OFF_LAST_GEN, t, Transients.OFF_R2, U32.LEN);
        U32.addShort(t, Transients.OFF_R2, (short) 1);
        byte next = (byte) (1 - p.selector());
        // The commit point (§8): selector, count, generations and U in one transaction.
        JCSystem.beginTransaction();
        Util.setShort(p.state, p.countOffset(next), count);
        p.state[Persistent.OFF_SELECTOR] = next;
        Util.arrayCopy(t, Transients.OFF_R2, p.state, Persistent.OFF_ACTIVE_GEN, U32.LEN);
        Util.arrayCopy(t, Transients.OFF_R2, p.state, Persistent.OFF_LAST_GEN, U32.LEN);
        Util.arrayCopy(t, Transients.OFF_R1, p.state, Persistent.OFF_USED, U32.LEN);
        JCSystem.commitTransaction();
        endSession();
        Util.arrayCopyNonAtomic(p.state, Persistent.OFF_ACTIVE_GEN, buf, (short) 0, U32.LEN);
        apdu.setOutgoingLength(Constants.GENERATION_LEN);
        apdu.sendBytes((short) 0, Constants.GENERATION_LEN);
    }

    // ---- §5.13 ABORT ------------------------------------------------------------------------

    private void processAbort() {
        requireSession();
        endSession();
    }

    // ---- §5.14 READ DATA --------------------------------------------------------------------

    private void processReadData(APDU apdu, byte[] buf, short off, short nc, short ne) {
        requirePairing();
        if (!p.reprovisioning.isValidated()) {
            ISOException.throwIt(Constants.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
        if (!p.hasGeneration()) {
            ISOException.throwIt(Constants.SW_STORE_EMPTY);
        }
        short n = buf[(short) (off + 1)];
        if (n != (short) (nc - Constants.ID_FIXED - Constants.OFFSET_LEN)) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        checkId(buf, off, n);
        short i = Store.find(activeTable(), p.activeCount(), buf, off);
        if (i < 0) {
            ISOException.throwIt(Constants.SW_REFERENCED_DATA_NOT_FOUND);
        }
        byte[] e = Store.entry(activeTable(), i);
        short offsetOff = (short) (off + Constants.ID_FIXED + n);
        // R1 = length − offset, refused when offset > length.
        Util.arrayCopyNonAtomic(e, Store.lengthOff(e), t, Transients.OFF_R1, U32.LEN);
        if (U32.compare(buf, offsetOff, t, Transients.OFF_R1) > 0) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        U32.sub(t, Transients.OFF_R1, buf, offsetOff);
        short k = U32.minShort(t, Transients.OFF_R1, ne);
        Util.arrayCopyNonAtomic(buf, offsetOff, t, Transients.OFF_R2, U32.LEN);
        apdu.setOutgoingLength(k);
        if (k > 0) {
            store.send(apdu, Store.first(e), t, Transients.OFF_R2, k);
        }
    }

    // ---- §5.15 ERASE ------------------------------------------------------------------------

    private void processErase(byte[] buf, short off) {
        if (Util.arrayCompare(buf, off, ERASE_CONFIRMATION, (short) 0, Constants.ERASE_LEN) != 0) {
            ISOException.throwIt(Constants.SW_INCORRECT_DATA);
        }
        // 1. One transaction: empty active table, generation 0, passcodes unset, wipe pending.
        Util.arrayFillNonAtomic(t, Transients.OFF_R1, U32.LEN, (byte) 0);
        JCSystem.beginTransaction();
        Util.setShort(p.state, p.countOffset(p.selector()), (short) 0);
        Util.arrayCopy(t, Transients.OFF_R1, p.state, Persistent.OFF_ACTIVE_GEN, U32.LEN);
        Util.arrayCopy(t, Transients.OFF_R1, p.state, Persistent.OFF_USED, U32.LEN);
        p.state[Persistent.OFF_PAIRING_SET] = 0;
        p.state[Persistent.OFF_REPROVISIONING_SET] = 0;
        p.state[Persistent.OFF_WIPE_PENDING] = 1;
        JCSystem.commitTransaction();
        // 2. Transient state; full tries. resetAndUnblock runs after the commit on purpose: an
        // OwnerPIN try counter does not roll back, so inside a torn transaction it would unblock a
        // LOCKED store whose "set" flags and records the rollback restores. Unset passcodes report
        // their limit anyway (§5.2) and SET PASSCODE's update() resets the counter again.
        p.pairing.resetAndUnblock();
        p.reprovisioning.resetAndUnblock();
        endSession();
        // 3. Zero every data byte and both tables, then clear wipe pending.
        completeWipe();
    }

    private void completeWipe() {
        store.wipe();
        p.state[Persistent.OFF_WIPE_PENDING] = 0;
    }
}
