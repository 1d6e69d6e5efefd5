// Package bench holds injector's performance benchmarks: end-to-end
// resolve latency and request counts against the provider emulators over
// loopback, decryption throughput, template rendering, process start-up and
// the steady-state memory of the refresh cycle. They run only with -bench;
// bench/run runs them with the flags docs/performance.md reports.
package bench
