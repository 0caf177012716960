package dev.simkit.cardhost.credit;

import dev.simkit.testkit.Hex;

/**
 * Everything a host can read of the module's persistent state without changing it: GET STATUS
 * (lifecycle, profile, module id, balance, N, limits, limit sequence, pending / provisional /
 * completion flags, pending R, fraud counters and threshold), GET LAST COMPLETION (ack, or its
 * status word: 6A88 none, 6985 in personalisation), GET FRAUD LOG and GET SERVER ADDRESS, as hex.
 * Two states are equal when every byte is; none of the four commands writes. The keys are not
 * readable: the walks that change them check them by what the module MACs afterwards.
 */
record CreditState(String status, String lastCompletion, String fraudLog, String address) {

    static CreditState read(CreditCard c) {
        return new CreditState(
                Hex.s(c.ok(CreditCard.apdu(0x10, null, 0x31))),
                Hex.s(c.send(CreditCard.apdu(0x26, null, 0x28))),
                Hex.s(c.ok(CreditCard.apdu(0x34, null, 0x00))),
                Hex.s(c.ok(CreditCard.apdu(0x12, null, 0x00))));
    }

    int lifecycle() {
        return st()[0];
    }

    private byte[] st() {
        return Hex.b(status);
    }

    int balance() {
        return Hex.i32(st(), 10);
    }

    long n() {
        return Hex.u32(st(), 14);
    }

    int flags() {
        return st()[38];
    }

    long limitSequence() {
        return Hex.u32(st(), 34);
    }

    /** m ‖ M ‖ U ‖ L as hex. */
    String limits() {
        return status.substring(36, 68);
    }

    @Override
    public String toString() {
        return String.format("{life=%d B=%d N=%d flags=%02X pendingR=%d limits=%s seq=%d bad=%d window=%d completion=%s log=%s addr=%d}",
                lifecycle(), balance(), n(), flags(), Hex.u32(st(), 39), limits(), limitSequence(), Hex.u16(st(), 43),
                Hex.u16(st(), 45), lastCompletion.length() > 8 ? lastCompletion.substring(0, 8) + "…" : lastCompletion,
                fraudLog, address.length() / 2);
    }
}
