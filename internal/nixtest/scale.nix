# A closure at scale, for storepack's scale benchmarks (mage bench) and,
# small, its tests: `items` store items, each with `files` files of `size`
# random bytes in data/, item i referring to items i-1 and i/2 (a chain
# and a tree, so popularity ranks them), the last item the root. Built
# with `nix-build --option sandbox false --no-out-link scale.nix -A root`;
# each item is one /bin/sh script with three processes, so 500 items build
# in well under a minute.
#
# Releases for the layering benchmarks: `bump` rebuilds item `bump` (new
# random bytes, a new path) and so every item above it in the chain;
# `extra` adds an item "extra" that only the root refers to. With the
# defaults every derivation is the same as without them.
{ items ? 500, files ? 200, size ? 20000, tag ? "storepack-scale", bump ? -1, extra ? false }:
let
  mk = i: deps: builtins.derivation ({
    name = "${tag}-${toString i}";
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-e" "-c" ''
      mkdir -p $out/data
      head -c ${toString (files * size)} /dev/urandom > $out/blob
      cd $out/data
      split -a 4 -d -b ${toString size} $out/blob f
      rm $out/blob
      echo ${builtins.concatStringsSep " " deps} > $out/refs
    '' ];
    PATH = "/usr/bin:/bin";
  } // (if i == bump then { release = "2"; } else { }));
  extraItem = mk "extra" [ ];
  # A list, so that each item is evaluated once (its deps are elements).
  all = builtins.genList (i:
    if i == 0 then mk 0 [ ]
    else mk i (map (j: "${builtins.elemAt all j}") ([ (i - 1) ] ++ (if i / 2 != i - 1 then [ (i / 2) ] else [ ]))
      ++ (if extra && i == items - 1 then [ "${extraItem}" ] else [ ]))) items;
in {
  root = builtins.elemAt all (items - 1);
}
