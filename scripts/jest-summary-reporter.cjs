// Prints one plain line at the very end of `pnpm test`, for people and CI alike:
//   "N passed, N failed, N skipped"
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const {
      numPassedTests: passed,
      numFailedTests: failed,
      numPendingTests: skipped,
      numTodoTests: todo,
    } = results;
    const broken = results.numRuntimeErrorTestSuites;
    process.stderr.write(`\n${passed} passed, ${failed + broken} failed, ${skipped + todo} skipped\n`);
  }
}
module.exports = SummaryReporter;
