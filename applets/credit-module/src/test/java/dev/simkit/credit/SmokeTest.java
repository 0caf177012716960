package dev.simkit.credit;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class SmokeTest {
    @Test
    void roundTrip() {
        for (Host.Profile p : Host.Profile.values()) {
            Module m = Module.operational(p);
            byte[] ack = m.reload(100, 100);
            assertEquals(100, Hex.i32(ack, 20));
            assertEquals(100, m.balance());
            assertEquals(1, m.n());
        }
    }
}
