// Command app is the example program that the bundled specs add to a store
// as a source and pack into archives and images.
package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	greeting := "hello from storepack"
	if len(os.Args) > 1 {
		greeting = "hello, " + os.Args[1]
	}
	fmt.Printf("%s (%s/%s)\n", greeting, runtime.GOOS, runtime.GOARCH)
}
