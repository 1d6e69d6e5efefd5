// Command hello is the smallest Go program that prints something: the
// start-up floor of any Go binary, which BenchmarkStartup divides
// `injector run -- true` by.
package main

import "fmt"

func main() { fmt.Println("hello, world") }
