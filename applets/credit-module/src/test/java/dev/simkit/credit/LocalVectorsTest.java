package dev.simkit.credit;

import java.util.List;

import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.TestFactory;

/**
 * The replay harness run on vectors the Java reference computes: exercises the shared format end
 * to end even before the Rust-generated file exists, and pins the reference itself.
 */
class LocalVectorsTest {

    @TestFactory
    List<DynamicTest> replayLocalVectors() {
        return VectorReplay.tests(LocalVectors.generate(), "LocalVectors");
    }
}
