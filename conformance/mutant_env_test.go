package conformance

// mutantEnv names the mutant a child test process runs the suite against.
const mutantEnv = "ASPSTATE_CONFORMANCE_MUTANT"
