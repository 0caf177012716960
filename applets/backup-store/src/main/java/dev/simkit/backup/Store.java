package dev.simkit.backup;

import javacard.framework.APDU;
import javacard.framework.JCSystem;
import javacard.framework.SystemException;
import javacard.framework.Util;

/**
 * Record tables and record data (spec §3.4, §10.2, §10.3), all allocated at install.
 *
 * <p>Data lives in blocks of 2^shift bytes (128 unless the capacity needs larger blocks to keep
 * the block count a short), packed into 8 KiB pages ({@code Object[]} of {@code byte[]}); a
 * record's blocks are chained through the persistent {@link #next} table (FAT style). With
 * {@code ⌈capacity / B⌉ + 2 × max records + 1} blocks, whatever §3.5 admits always fits without
 * compaction: at most max-records active chains, max-records staged chains and one open record
 * are live at once, each wasting less than one block.
 *
 * <p>Two tables of max-records entries; {@code Persistent.OFF_SELECTOR} names the active one, the
 * other is the staging table. An entry is the manifest entry (§3.3, up to 102 bytes), the first
 * block and a "written in this session" flag. Staging entries, links and record bytes are written
 * non-atomically: nothing the active table references is ever touched before COMMIT.
 *
 * <p>The free map (transient, one bit per block) is rebuilt from the active table alone at every
 * BEGIN SESSION, so whatever a torn or abandoned session left behind is free again.
 */
final class Store {

    static final short ENTRY_OFF_FIRST = Constants.ENTRY_MAX;
    static final short ENTRY_OFF_FRESH = (short) (Constants.ENTRY_MAX + 2);
    /** A one-byte hash of the id ({@link #idHash}): {@link #find} compares ids only where it matches. */
    static final short ENTRY_OFF_HASH = (short) (Constants.ENTRY_MAX + 3);
    static final short ENTRY_LEN = (short) (Constants.ENTRY_MAX + 4);
    static final short NO_BLOCK = -1;
    static final short PAGE_SHIFT = 13;
    static final short PAGE_SIZE = (short) (1 << PAGE_SHIFT);
    static final short MIN_SHIFT = 7;

    final short maxRecords;
    /** log2 of the block size. */
    final short shift;
    final short blockSize;
    final short blockCount;
    final Object[] pages;
    final short[] next;
    final Object[] tableA;
    final Object[] tableB;
    /**
     * Each table's own entry objects in their install order, never written. {@link #remove}
     * rotates a staging table's references without a transaction, so a tear inside it can leave
     * one object at two positions and lose another; {@link #resetSlots} puts the staging table
     * back in this order at every BEGIN SESSION, before anything is staged in it.
     */
    private final Object[] poolA;
    private final Object[] poolB;
    /** Transient: bit set = block in use (active or this session). */
    final byte[] used;
    private final byte[] t;

    /** Allocates everything for {@code capacity} (4 bytes at capOff) data bytes; fails at install. */
    Store(byte[] cap, short capOff, short maxRecords, byte[] transients) {
        this.maxRecords = maxRecords;
        t = transients;
        if (maxRecords > (short) 16383) {
            SystemException.throwIt(SystemException.NO_RESOURCE);
        }
        short extra = (short) (2 * maxRecords + 1);
        short s = MIN_SHIFT;
        short blocks = -1;
        while (s <= PAGE_SHIFT) {
            short data = U32.ceilShift(cap, capOff, s);
            if (data >= 0 && (short) (data + extra) > 0) {
                blocks = (short) (data + extra);
                break;
            }
            s++;
        }
        if (blocks < 0) {
            SystemException.throwIt(SystemException.NO_RESOURCE);
        }
        shift = s;
        blockSize = (short) (1 << s);
        blockCount = blocks;
        short perPageShift = (short) (PAGE_SHIFT - s);
        short pageCount = (short) ((short) (blocks + (short) (1 << perPageShift) - 1) >> perPageShift);
        pages = new Object[pageCount];
        short perPage = (short) (1 << perPageShift);
        for (short i = 0; i < pageCount; i++) {
            // The last page holds only the blocks that are left (small stores: one small page).
            short inPage = (short) (blocks - (short) (i * perPage));
            pages[i] = new byte[inPage >= perPage ? PAGE_SIZE : (short) (inPage << s)];
        }
        next = new short[blocks];
        tableA = new Object[maxRecords];
        tableB = new Object[maxRecords];
        poolA = new Object[maxRecords];
        poolB = new Object[maxRecords];
        for (short i = 0; i < maxRecords; i++) {
            poolA[i] = new byte[ENTRY_LEN];
            poolB[i] = new byte[ENTRY_LEN];
            tableA[i] = poolA[i];
            tableB[i] = poolB[i];
        }
        used = JCSystem.makeTransientByteArray((short) ((short) (blocks + 7) >> 3), JCSystem.CLEAR_ON_DESELECT);
    }

    Object[] table(byte which) {
        return which == 0 ? tableA : tableB;
    }

    static byte[] entry(Object[] table, short i) {
        return (byte[]) table[i];
    }

    /** Bytes of the manifest entry part: 38 + n. */
    static short manifestLen(byte[] e) {
        return (short) (Constants.ENTRY_FIXED + e[1]);
    }

    /** Offset of the 4-byte data length in an entry. */
    static short lengthOff(byte[] e) {
        return (short) (Constants.ID_FIXED + e[1]);
    }

    static short first(byte[] e) {
        return Util.getShort(e, ENTRY_OFF_FIRST);
    }

    /**
     * A one-byte hash of the id {@code category ‖ n ‖ name} at idOff (its length was checked).
     * Every table entry carries it at {@link #ENTRY_OFF_HASH}, set when its record is opened, so a
     * search compares whole ids only for about one entry in 256 besides the one it looks for:
     * staging a session of N records costs N searches of up to N entries each.
     */
    static byte idHash(byte[] id, short idOff) {
        short end = (short) (idOff + Constants.ID_FIXED + id[(short) (idOff + 1)]);
        short h = 0;
        for (short i = idOff; i < end; i++) {
            h = (short) ((short) (h * 31) + (short) (id[i] & 0xFF));
        }
        return (byte) (h ^ (short) (h >> 8));
    }

    /** Index of the entry with id {@code category ‖ n ‖ name} at idOff, or −1. */
    static short find(Object[] table, short count, byte[] id, short idOff) {
        short idLen = (short) (Constants.ID_FIXED + id[(short) (idOff + 1)]);
        byte h = idHash(id, idOff);
        for (short i = 0; i < count; i++) {
            byte[] e = entry(table, i);
            if (e[ENTRY_OFF_HASH] == h && e[1] == id[(short) (idOff + 1)]
                    && Util.arrayCompare(e, (short) 0, id, idOff, idLen) == 0) {
                return i;
            }
        }
        return -1;
    }

    /**
     * Gives table {@code which} its own entry objects back, one at each position (non-atomic: only
     * for the staging table, which nothing references). Writes only the positions that differ.
     */
    void resetSlots(byte which) {
        Object[] table = table(which);
        Object[] pool = which == 0 ? poolA : poolB;
        for (short i = 0; i < maxRecords; i++) {
            if (table[i] != pool[i]) {
                table[i] = pool[i];
            }
        }
    }

    /** Removes entry i (later entries move up one place) by rotating the entry objects. */
    static void remove(Object[] table, short count, short i) {
        Object gone = table[i];
        for (short k = i; k < (short) (count - 1); k++) {
            table[k] = table[(short) (k + 1)];
        }
        table[(short) (count - 1)] = gone;
    }

    // ---- free map -----------------------------------------------------------------------------

    void clearUsed() {
        Util.arrayFillNonAtomic(used, (short) 0, (short) used.length, (byte) 0);
        Util.setShort(t, Transients.OFF_FREE_HINT, (short) 0);
    }

    private void mark(short b, boolean inUse) {
        short i = (short) (b >> 3);
        byte bit = (byte) (1 << (short) (b & 7));
        used[i] = inUse ? (byte) (used[i] | bit) : (byte) (used[i] & ~bit);
    }

    private boolean inUse(short b) {
        return (used[(short) (b >> 3)] & (byte) (1 << (short) (b & 7))) != 0;
    }

    /** Marks (or frees) every block of the chain starting at {@code b}. */
    void markChain(short b, boolean inUse) {
        short hint = Util.getShort(t, Transients.OFF_FREE_HINT);
        while (b != NO_BLOCK) {
            mark(b, inUse);
            if (!inUse && b < hint) {
                hint = b;
            }
            b = next[b];
        }
        Util.setShort(t, Transients.OFF_FREE_HINT, hint);
    }

    /** Number of blocks a record of length {@code len} (4 bytes) needs. */
    short blocksFor(byte[] len, short lenOff) {
        return U32.ceilShift(len, lenOff, shift);
    }

    /**
     * Allocates and links {@code count} free blocks (links written non-atomically: the blocks are
     * unreferenced); answers the first, {@link #NO_BLOCK} for 0, or −2 when the map is full.
     */
    short allocate(short count) {
        short first = NO_BLOCK;
        short prev = NO_BLOCK;
        short b = Util.getShort(t, Transients.OFF_FREE_HINT);
        for (short k = 0; k < count; k++) {
            while (b < blockCount && inUse(b)) {
                b++;
            }
            if (b >= blockCount) {
                markChain(first, false);
                return -2;
            }
            mark(b, true);
            if (prev == NO_BLOCK) {
                first = b;
            } else {
                next[prev] = b;
            }
            prev = b;
            b++;
        }
        if (prev != NO_BLOCK) {
            next[prev] = NO_BLOCK;
        }
        Util.setShort(t, Transients.OFF_FREE_HINT, b);
        return first;
    }

    // ---- data ---------------------------------------------------------------------------------

    private byte[] page(short b) {
        return (byte[]) pages[(short) (b >> (short) (PAGE_SHIFT - shift))];
    }

    private short pageOff(short b) {
        return (short) ((short) (b & (short) ((short) (1 << (short) (PAGE_SHIFT - shift)) - 1)) << shift);
    }

    /**
     * Writes {@code len} bytes at the open record's cursor (Transients OFF_CUR_BLOCK / OFF_CUR_OFF),
     * non-atomically, and advances the cursor. The caller checked W + len ≤ L.
     */
    void write(byte[] src, short off, short len) {
        short b = Util.getShort(t, Transients.OFF_CUR_BLOCK);
        short o = Util.getShort(t, Transients.OFF_CUR_OFF);
        short perPageMask = (short) ((short) (1 << (short) (PAGE_SHIFT - shift)) - 1);
        while (len > 0) {
            if (o == blockSize) {
                b = next[b];
                o = 0;
            }
            // One copy over the run of blocks that follow each other in the chain and in the
            // page (a fresh session allocates them in order): the same bytes written in the
            // same order as block by block, in far fewer calls.
            short run = (short) (blockSize - o);
            short last = b;
            while (run < len && next[last] == (short) (last + 1) && (short) ((short) (last + 1) & perPageMask) != 0) {
                last++;
                run = (short) (run + blockSize);
            }
            short k = run > len ? len : run;
            Util.arrayCopyNonAtomic(src, off, page(b), (short) (pageOff(b) + o), k);
            // The cursor after k bytes from (b, o): o == blockSize marks the end of a block.
            short total = (short) (o + k);
            short ahead = (short) ((short) (total - 1) >> shift);
            b = (short) (b + ahead);
            o = (short) (total - (short) (ahead << shift));
            off = (short) (off + k);
            len = (short) (len - k);
        }
        Util.setShort(t, Transients.OFF_CUR_BLOCK, b);
        Util.setShort(t, Transients.OFF_CUR_OFF, o);
    }

    /** Sends {@code len} record bytes from {@code offset} (4 bytes) of the chain at {@code b}. */
    void send(APDU apdu, short b, byte[] offset, short offsetOff, short len) {
        short skip = U32.shiftDown(offset, offsetOff, shift);
        short o = (short) (U32.low(offset, offsetOff) & (short) (blockSize - 1));
        for (short i = 0; i < skip; i++) {
            b = next[b];
        }
        while (len > 0) {
            if (o == blockSize) {
                b = next[b];
                o = 0;
            }
            short k = (short) (blockSize - o);
            if (k > len) {
                k = len;
            }
            apdu.sendBytesLong(page(b), (short) (pageOff(b) + o), k);
            o = (short) (o + k);
            len = (short) (len - k);
        }
    }

    /** ERASE step 3: every data byte, link and table entry to zero (non-atomic). */
    void wipe() {
        for (short i = 0; i < (short) pages.length; i++) {
            byte[] p = (byte[]) pages[i];
            Util.arrayFillNonAtomic(p, (short) 0, (short) p.length, (byte) 0);
        }
        for (short i = 0; i < blockCount; i++) {
            next[i] = 0;
        }
        for (short i = 0; i < maxRecords; i++) {
            Util.arrayFillNonAtomic(entry(tableA, i), (short) 0, ENTRY_LEN, (byte) 0);
            Util.arrayFillNonAtomic(entry(tableB, i), (short) 0, ENTRY_LEN, (byte) 0);
        }
    }
}
