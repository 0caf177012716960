package dev.simkit.cardhost.runtime;

import java.util.Arrays;
import javacard.framework.AID;

/**
 * Which applet a SELECT by DF name picks (ISO/IEC 7816-4 §11.2.2, JCRE 3.0.5 §4.5), decided by
 * the card host before jCardSim sees the command. Specified in {@code applet-spec/simulator.md},
 * "SELECT by AID".
 *
 * <p>jCardSim answered a SELECT of an AID that is not on the card by history: {@code 6999} with
 * nothing selected, and otherwise passed it to the selected applet ({@code 6D00} from the test
 * applets), and it threw (answered {@code 6F00}) for a SELECT with 128 or more data bytes. Here
 * an unknown AID is {@code 6A82} and the selection stays as it was; a known one goes on to
 * jCardSim as a SELECT it will resolve to the same applet. This class owns no card state: it
 * reads the installed AIDs (in AID order) and the current one.
 */
final class Selection {
    /** The longest AID (ISO/IEC 7816-5): a DF name longer than this matches no applet. */
    static final int MAX_AID = 16;

    private static final byte INS_SELECT = (byte) 0xA4;
    private static final byte P1_BY_NAME = 0x04;
    private static final int P2_OCCURRENCE = 0x03;
    private static final int P2_FIRST = 0x00;
    private static final int P2_NEXT = 0x02;
    /** P2 bits 4-3: which file control information to return; passed on untouched. */
    private static final int P2_FCI = 0x0C;
    private static final byte[] SW_FILE_NOT_FOUND = {0x6A, (byte) 0x82};
    private static final byte[] SW_WRONG_P1P2 = {0x6A, (byte) 0x86};

    private Selection() {
    }

    /**
     * The result: {@code command} to hand to jCardSim (a SELECT that names the chosen applet),
     * or, when it is null, {@code answer} (the status word to give instead).
     */
    record Outcome(byte[] command, byte[] answer) {
    }

    /**
     * A SELECT by DF name (P1 = 04) in the basic-channel ISO classes 00..03, whatever its P2 —
     * the commands this class decides. Any other SELECT goes to the selected applet.
     */
    static boolean isSelectByName(byte[] c) {
        return c.length >= 4 && (c[0] & 0xFC) == 0 && c[1] == INS_SELECT && c[2] == P1_BY_NAME;
    }

    /**
     * Resolves a SELECT by DF name. P2 bits 8-5 set, or occurrence "last" (01) or "previous"
     * (03): {@code 6A86}. No data: first occurrence selects the first applet in AID order (the
     * card has no card manager), next occurrence the one after the current applet. With data
     * (the DF name, 1 to 16 bytes): first occurrence selects the applet whose AID equals it, or
     * else the first in AID order whose AID starts with it; next occurrence selects the first
     * applet after the current one in AID order whose AID starts with it (the first such applet
     * when the current one's AID does not). No match: {@code 6A82}.
     *
     * @param aids the installed applets' AIDs in AID order (jCardSim's registry order)
     * @param current the selected applet, or null
     * @param shape the command's ISO case (never null: malformed commands are refused first)
     */
    static Outcome resolve(Iterable<AID> aids, AID current, byte[] c, CommandShape shape) {
        int p2 = c[3] & 0xFF;
        int occurrence = p2 & P2_OCCURRENCE;
        if ((p2 & 0xF0) != 0 || (occurrence != P2_FIRST && occurrence != P2_NEXT)) {
            return new Outcome(null, SW_WRONG_P1P2.clone());
        }
        int nc = shape.nc();
        if (nc > MAX_AID) {
            return new Outcome(null, SW_FILE_NOT_FOUND.clone());
        }
        int dataOff = shape.extended() ? 7 : 5;
        byte[] name = nc == 0 ? new byte[0] : Arrays.copyOfRange(c, dataOff, dataOff + nc);
        byte[] target = occurrence == P2_FIRST ? first(aids, name) : next(aids, current, name);
        if (target == null) {
            return new Outcome(null, SW_FILE_NOT_FOUND.clone());
        }
        if (!shape.extended() && occurrence == P2_FIRST) {
            // jCardSim resolves a short first-occurrence SELECT with the same rule (exact, then
            // prefix in AID order; no data: the first applet), and the applet then sees the
            // command as it was sent.
            return new Outcome(c, null);
        }
        return new Outcome(shortSelect(c[0], p2 & P2_FCI, target, shape.ne()), null);
    }

    private static byte[] first(Iterable<AID> aids, byte[] name) {
        byte[] prefixMatch = null;
        for (AID aid : aids) {
            byte[] a = bytes(aid);
            if (Arrays.equals(a, name)) {
                return a;
            }
            if (prefixMatch == null && startsWith(a, name)) {
                prefixMatch = a;
            }
        }
        return prefixMatch;
    }

    private static byte[] next(Iterable<AID> aids, AID current, byte[] name) {
        byte[] cur = current == null ? null : bytes(current);
        boolean currentMatches = cur != null && startsWith(cur, name);
        boolean passed = !currentMatches;
        for (AID aid : aids) {
            byte[] a = bytes(aid);
            if (passed && startsWith(a, name)) {
                return a;
            }
            if (currentMatches && Arrays.equals(a, cur)) {
                passed = true;
            }
        }
        return null;
    }

    /** {@code CLA A4 04 P2 Lc AID [Le]}: a SELECT jCardSim resolves to exactly {@code aid}. */
    private static byte[] shortSelect(byte cla, int p2, byte[] aid, int ne) {
        byte[] s = new byte[5 + aid.length + (ne > 0 ? 1 : 0)];
        s[0] = cla;
        s[1] = INS_SELECT;
        s[2] = P1_BY_NAME;
        s[3] = (byte) p2;
        s[4] = (byte) aid.length;
        System.arraycopy(aid, 0, s, 5, aid.length);
        if (ne > 0) {
            s[s.length - 1] = (byte) (ne >= 256 ? 0 : ne);
        }
        return s;
    }

    private static boolean startsWith(byte[] aid, byte[] prefix) {
        return aid.length >= prefix.length && Arrays.equals(aid, 0, prefix.length, prefix, 0, prefix.length);
    }

    private static byte[] bytes(AID aid) {
        byte[] b = new byte[MAX_AID];
        int len = aid.getBytes(b, (short) 0);
        return Arrays.copyOf(b, len);
    }
}
