package dev.simkit.backup;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.TreeSet;

import dev.simkit.testkit.JavaCardSubset;
import org.junit.jupiter.api.Test;

/**
 * A guard in place of the Java Card converter (not available here): the applet classes reference
 * only the Java Card API and their own package, declare no int/long/float/double/String fields,
 * parameters or results, and carry no 32-bit or wider constants. The guard itself lives in the
 * applet test kit, whose own tests show it catches each kind of violation.
 */
class JavaCardSubsetTest {

    static final Class<?>[] APPLET_CLASSES = {
        BackupStore.class, Constants.class, Transients.class, Persistent.class, Store.class, U32.class, Names.class,
    };

    @Test
    void onlyTheJavaCardApiAndShortArithmetic() throws IOException {
        TreeSet<String> problems = JavaCardSubset.problems("dev/simkit/backup/", APPLET_CLASSES);
        assertTrue(problems.isEmpty(), String.join("\n", problems));
    }
}
