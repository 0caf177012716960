package dev.simkit.cardhost.credit;

import dev.simkit.cardhost.AppletSpec;
import dev.simkit.cardhost.Card;
import dev.simkit.cardhost.TestCards;
import dev.simkit.testkit.Hex;
import dev.simkit.testkit.SimCard;
import dev.simkit.credit.Host;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * A card-host {@link Card} (instrumented applet classes, {@code SimkitRuntime}) holding the credit
 * module, personalised and locked for one profile, plus the issuer's knowledge of it (keys from
 * the credit module's own host reference, {@link Host}).
 */
final class CreditCard extends SimCard {
    static final byte[] AID = Hex.b("F053494D4B49540101");
    static final String CLASS = "dev.simkit.credit.CreditModule";
    static final byte[] ID = Hex.b("0102030405060708");
    static final int BALANCE = 1_000;
    static final long N = 7;
    /** m, M, U, L. */
    static final long MIN = 1;
    static final long MAX = 10_000;
    static final int UPPER = 50_000;
    static final int LINE = 500;
    static final int THRESHOLD = 5;
    static final byte[] ADDRESS = "https://reload.example/t".getBytes(StandardCharsets.US_ASCII);
    static final byte[] LOCK = apdu(0x5E, null, -1);

    final Host.Profile profile;
    final byte[] kReq;
    final byte[] kGrant;
    final Card card;

    private CreditCard(Host.Profile profile, boolean rollback) {
        this(profile, new Card(0, rollback, new URL[0], CreditCard.class.getClassLoader()));
    }

    private CreditCard(Host.Profile profile, Card card) {
        super(TestCards.completed(card), TestCards.powerCycle(card));
        this.profile = profile;
        byte[][] k = Host.deriveKeys(profile, master(profile), ID);
        kReq = k[0];
        kGrant = k[1];
        this.card = card;
        card.install(new AppletSpec(AID, CLASS, new byte[0]));
    }

    /** Installed and selected, nothing personalised (lifecycle personalisation). */
    static CreditCard fresh(Host.Profile profile, boolean rollback) {
        CreditCard c = new CreditCard(profile, rollback);
        c.select();
        return c;
    }

    /** Installed, selected, personalised (balance 1000, N 7, threshold 5) and locked. */
    static CreditCard operational(Host.Profile profile, boolean rollback) {
        return operational(profile, rollback, N, THRESHOLD);
    }

    /** Installed, selected, personalised with initial N {@code n} and {@code threshold}, and locked. */
    static CreditCard operational(Host.Profile profile, boolean rollback, long n, int threshold) {
        CreditCard c = personalised(profile, rollback, n, threshold);
        c.ok(LOCK);
        return c;
    }

    /** Installed, selected and personalised with every tag (balance 1000), but not locked. */
    static CreditCard personalised(Host.Profile profile, boolean rollback, long n, int threshold) {
        CreditCard c = fresh(profile, rollback);
        c.ok(c.personaliseAll(n, threshold));
        return c;
    }

    /** PERSONALISE with all eight tags (credit-module.md §4.11). */
    byte[] personaliseAll(long n, int threshold) {
        return apdu(0x50, Hex.cat(
                tlv(0x81, ID),
                tlv(0x82, new byte[] {(byte) profile.id}),
                tlv(0x83, kReq),
                tlv(0x84, kGrant),
                tlv(0x85, Hex.cat(Hex.u32(MIN), Hex.u32(MAX), Hex.u32(UPPER), Hex.u32(LINE))),
                tlv(0x86, Hex.cat(Hex.u32(BALANCE), Hex.u32(n))),
                tlv(0x87, Hex.u16(threshold)),
                tlv(0x88, ADDRESS)), -1);
    }

    static byte[] master(Host.Profile p) {
        switch (p) {
            case AES_CMAC:
                return Hex.b("000102030405060708090A0B0C0D0E0F");
            case RETAIL_MAC:
                return Hex.b("0123456789ABCDEFFEDCBA9876543210");
            default:
                return Hex.b("0123456789ABCDEF 1011121314151617 2021222324252627");
        }
    }

    void select() {
        select(AID);
    }

    CreditState state() {
        return CreditState.read(this);
    }

    // ---- commands (credit-module.md §4) --------------------------------------------------------

    static byte[] apdu(int ins, byte[] data, int le) {
        byte[] c = {(byte) 0x80, (byte) ins, 0, 0};
        if (data != null && data.length > 0) {
            c = Hex.cat(c, new byte[] {(byte) data.length}, data);
        }
        return le < 0 ? c : Hex.cat(c, new byte[] {(byte) le});
    }

    static byte[] initiate(long r) {
        return apdu(0x20, Hex.u32(r), 0x1F);
    }

    static byte[] applyGrant(byte[] grant) {
        return apdu(0x22, grant, 0x28);
    }

    static byte[] applyProvisional(byte[] ack) {
        return apdu(0x24, ack, -1);
    }

    static byte[] debit(long amount) {
        return apdu(0x30, Hex.u32(amount), 0x04);
    }

    static byte[] applyLimitUpdate(byte[] update) {
        return apdu(0x32, update, -1);
    }

    static byte[] tlv(int tag, byte[] value) {
        return Hex.cat(new byte[] {(byte) tag, (byte) value.length}, value);
    }

    static String sw(byte[] response) {
        return Hex.s(Arrays.copyOfRange(response, response.length - 2, response.length));
    }

    // ---- server side (Host reference) ----------------------------------------------------------

    byte[] grantFor(byte[] request, long g) {
        return Host.grant(profile, ID, kGrant, Hex.u32(request, 11) + 1, 0, 0, g, Host.tagOf(request));
    }

    byte[] provisionalFor(byte[] request) {
        return Host.provisional(profile, ID, kGrant, Hex.u32(request, 11) + 1, Host.tagOf(request));
    }

    byte[] limitUpdate(long seq, long m, long max, int u, int l) {
        return Host.limitUpdate(profile, ID, kGrant, seq, m, max, u, l);
    }
}
