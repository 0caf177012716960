package dev.simkit.credit;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import com.fasterxml.jackson.databind.ObjectMapper;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The known-answer check against the Rust core: replays applet-spec/vectors/credit-module.json
 * (written by simkit-core) on the applet. A missing file is a failure, never a skip: without it
 * nothing proves the two implementations agree.
 */
class SharedVectorsTest {

    static Path vectors() {
        return Path.of(System.getProperty("simkit.vectors", "../../applet-spec/vectors/credit-module.json"));
    }

    @TestFactory
    List<DynamicTest> replaySharedVectors() throws Exception {
        Path file = vectors();
        if (!Files.isRegularFile(file)) {
            fail("shared vectors " + file.toAbsolutePath().normalize() + " not found: simkit-core writes them"
                    + " (SIMKIT_BLESS=1 cargo test -p simkit-core --test spec_vectors); set -Dsimkit.vectors=PATH"
                    + " to replay another copy");
        }
        return VectorReplay.tests(new ObjectMapper().readTree(file.toFile()), file.toString());
    }
}
