// A Go program: its syscalls never go through libc.
package main

import "os"

func main() {
	path := "go.out"
	if len(os.Args) > 1 {
		path = os.Args[1]
	}
	f, err := os.Create(path)
	if err != nil {
		os.Exit(1)
	}
	f.Write([]byte("go\n"))
	f.Close()
}
