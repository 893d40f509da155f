// Package twistbench is a benchmarking and conformance harness for
// event-driven network engines (reactors) and data layers (stores).
//
// The code lives in sub-packages; see README.md for the layout. This root
// package holds only repository-level checks, such as linting the GitHub
// workflows, which cannot run on the machines the tests run on.
package twistbench
