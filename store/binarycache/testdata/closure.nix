# A small closure that the binary cache tests delete from the store and
# substitute back from a cache storepack wrote. Its names are its own
# (tag), so that deleting it never touches another package's test
# closure. Built with
# `nix-build --option sandbox false --no-out-link closure.nix -A root`.
#
#   root -> mid -> leaf   (mid refers to leaf in a file and a symlink)
#        -> leaf
#        -> root          (a self-reference)
#
# big (-A big), apart from it: 12 MiB of random bytes, a NAR that goes up
# to S3 in a multipart upload, and a reference to big-leaf.
{ tag ? "storepack-binarycache" }:
let
  mk = name: script: builtins.derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-e" "-c" script ];
    PATH = "/usr/bin:/bin";
  };
in rec {
  leaf = mk "${tag}-leaf" ''
    printf 'leaf data\n' > $out
  '';

  mid = mk "${tag}-mid" ''
    mkdir -p $out/share
    printf '%s\n' ${leaf} > $out/share/uses-leaf
    ln -s ${leaf} $out/leaf
  '';

  root = mk "${tag}-root" ''
    mkdir -p $out/bin $out/share
    printf '#!/bin/sh\necho %s %s %s\n' ${mid} ${leaf} $out > $out/bin/run
    chmod 0755 $out/bin/run
    i=0
    while [ $i -lt 2000 ]; do
      printf 'line %d of compressible text\n' $i
      i=$((i + 1))
    done > $out/share/text
  '';

  bigLeaf = mk "${tag}-big-leaf" ''
    printf 'big leaf\n' > $out
  '';

  big = mk "${tag}-big" ''
    mkdir -p $out
    head -c 12582912 /dev/urandom > $out/random
    ln -s ${bigLeaf} $out/leaf
  '';
}
