# A program built by Nix (in a chroot store, by TestRelocatableNixProgram)
# whose whole closure is in the store, as a Nix package's is: its ELF
# interpreter and libc are copied into the store (item glibc), and it
# loads a shared library (item libgreet) by its absolute store path (a
# DT_NEEDED entry naming the file). The builders use the host's gcc and
# binutils through sandbox-paths: there is no network to fetch a
# toolchain. nonce makes every item's path new, so that no other store
# has them.
{ nonce }:
let
  drv = name: script: extra: builtins.derivation ({
    inherit name nonce;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-c" ("set -e; " + script) ];
    PATH = "/usr/bin:/bin";
  } // extra);
in rec {
  # The host's dynamic loader and libc, as the store's own.
  glibc = drv "glibc" ''
    loader=$(readelf -l /bin/sh | sed -n 's/.*interpreter: \(.*\)]/\1/p')
    mkdir -p $out/lib
    cp -L "$loader" "$(gcc -print-file-name=libc.so.6)" $out/lib/
  '' { };
  libgreet = drv "libgreet-1.0" ''
    cp $src greet.c
    mkdir -p $out/lib
    gcc -shared -fPIC -o $out/lib/libgreet.so greet.c
  '' { src = ./greet.c; };
  greeter = drv "greeter-1.0" ''
    cp $src greeter.c
    loader=$(readelf -l /bin/sh | sed -n 's/.*interpreter: \(.*\)]/\1/p')
    mkdir -p $out/bin
    gcc -o $out/bin/greeter greeter.c ${libgreet}/lib/libgreet.so \
      -Wl,--dynamic-linker=${glibc}/lib/$(basename "$loader") -Wl,-rpath,${glibc}/lib
  '' { src = ./greeter.c; };
}
