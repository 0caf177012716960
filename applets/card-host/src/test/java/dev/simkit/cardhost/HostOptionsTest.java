package dev.simkit.cardhost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class HostOptionsTest {
    @Test
    void defaults() {
        HostOptions o = HostOptions.parse(new String[0]);
        assertEquals(0, o.port());
        assertEquals(List.of(CardHost.DEFAULT_CARD), o.cards());
        assertEquals(1, o.copies());
        assertTrue(o.rollback());
        assertFalse(o.quiet());
        assertTrue(o.fastDigest());
    }

    @Test
    void jcardsimDigestTurnsTheFastDigestsOff() {
        assertFalse(HostOptions.parse(new String[] {"--jcardsim-digest"}).fastDigest());
        assertTrue(HostOptions.USAGE.contains("--jcardsim-digest"));
    }

    @Test
    void cardSpecsWithSeveralAppletsAndCopies() {
        HostOptions o = HostOptions.parse(new String[] {
            "--port", "9025", "--port-file", "/tmp/p", "--no-rollback", "--quiet", "--cards", "3",
            "--applet-package", "a.lib",
            "--card", "aid=F0534D4B495401,class=a.B,params=0A0b; aid=F0534D4B495402,class=a.C",
            "--card", "aid=F0534D4B495403,class=a.D"});
        assertEquals(9025, o.port());
        assertEquals(Path.of("/tmp/p"), o.portFile());
        assertFalse(o.rollback());
        assertTrue(o.quiet());
        assertEquals(3, o.copies());
        assertEquals(List.of("a.lib"), o.appletPackages());
        assertEquals(2, o.cards().size());
        AppletSpec first = o.cards().get(0).get(0);
        assertArrayEquals(Hex.parse("F0534D4B495401"), first.aid());
        assertEquals("a.B", first.className());
        assertArrayEquals(new byte[] {0x0A, 0x0B}, first.params());
        assertEquals("a.C", o.cards().get(0).get(1).className());
        assertEquals(0, o.cards().get(0).get(1).params().length);
    }

    @Test
    void vpcdAddress() {
        assertEquals(null, HostOptions.parse(new String[0]).vpcd());
        HostOptions o = HostOptions.parse(new String[] {"--vpcd", "127.0.0.1:35963"});
        assertEquals("127.0.0.1", o.vpcd().getHostString());
        assertEquals(35963, o.vpcd().getPort());
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--vpcd", "35963"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--vpcd"}));
    }

    @Test
    void badArgumentsAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--port"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--port", "70000"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--bogus"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--card", "class=a.B"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--card", "aid=0102,class=a.B"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--card", "aid=F0534D4B495401,klass=a.B"}));
        assertThrows(IllegalArgumentException.class, () -> HostOptions.parse(new String[] {"--cards", "300"}));
    }

    @Test
    void installDataIsGlobalPlatformShaped() {
        assertArrayEquals(Hex.parse("05A000000001" + "00" + "02CAFE"),
                Card.installData(Hex.parse("A000000001"), Hex.parse("CAFE")));
    }
}
