package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/storepack/storepack/internal/signing"
	"github.com/storepack/storepack/store/binarycache"
)

var keygenVerb = &verb{
	name:     "keygen",
	operands: "NAME [SECRET-FILE PUBLIC-FILE]",
	summary:  "Make a binary cache signing key pair, as nix-store --generate-binary-cache-key: into the two files (never overwritten), or printed secret then public. With --pem, an ed25519 pair for the other formats' sign_key and cosign: NAME.key (PKCS#8) and NAME.pub.",
	min:      1, max: 3,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		pemKey := fs.Bool("pem", false, "write an ed25519 PEM pair NAME.key and NAME.pub (what sign_key takes on formats other than binary-cache, and `cosign verify --key NAME.pub`)")
		return func(e *env, args []string) error {
			if *pemKey {
				if len(args) != 1 {
					return &usageError{msg: "keygen --pem: give NAME alone"}
				}
				if err := signing.WritePEMFiles(args[0]+".key", args[0]+".pub"); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "%s.key\n%s.pub\n", args[0], args[0])
				return nil
			}
			switch len(args) {
			case 1:
				sec, pub, err := signing.Keygen(args[0])
				if err != nil {
					return err
				}
				fmt.Fprintln(e.stdout, sec)
				fmt.Fprintln(e.stdout, pub)
				return nil
			case 3:
				return signing.WriteKeyFiles(args[0], args[1], args[2])
			}
			return &usageError{msg: "keygen: give NAME alone, or NAME SECRET-FILE PUBLIC-FILE"}
		}
	},
}

var verifyCacheVerb = &verb{
	name:     "verify-cache",
	operands: "DIR|s3://BUCKET[/PREFIX]?...",
	summary:  "Check every narinfo of a binary cache (a folder or an S3 bucket): its signature by --key, its NAR's file hash and size, and the NAR hash and size.",
	min:      1, max: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		key := fs.String("key", "", "the public key, as text (name:base64) or a file holding it (required)")
		return func(e *env, args []string) error {
			if *key == "" {
				return &usageError{msg: "verify-cache: --key is required"}
			}
			k, err := signing.LoadPublicKey(*key)
			if err != nil {
				return err
			}
			c, err := binarycache.Open(args[0])
			if err != nil {
				return err
			}
			n, err := binarycache.VerifyCache(context.Background(), c, k)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: %d narinfos verified\n", c, n)
			return nil
		}
	},
}
