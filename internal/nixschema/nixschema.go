// Package nixschema is the one definition of the tables of Nix's and
// Guix's store databases (Nix's schema.sql of schema version 10; Guix's
// has the same tables), created as the daemons create them so that either
// opens a database made with it as its own. store.WriteDB writes the
// databases inside trees and images with it, and internal/nixdb the
// databases of test stores. It imports nothing, so that both (and the
// store package's own tests) can use it.
package nixschema

// Schema creates the tables, indexes and trigger of a store database.
const Schema = `
CREATE TABLE IF NOT EXISTS ValidPaths (
    id               integer primary key autoincrement not null,
    path             text unique not null,
    hash             text not null,
    registrationTime integer not null,
    deriver          text,
    narSize          integer,
    ultimate         integer,
    sigs             text,
    ca               text
);
CREATE TABLE IF NOT EXISTS Refs (
    referrer  integer not null,
    reference integer not null,
    primary key (referrer, reference),
    foreign key (referrer) references ValidPaths(id) on delete cascade,
    foreign key (reference) references ValidPaths(id) on delete restrict
);
CREATE INDEX IF NOT EXISTS IndexReferrer ON Refs(referrer);
CREATE INDEX IF NOT EXISTS IndexReference ON Refs(reference);
CREATE TRIGGER IF NOT EXISTS DeleteSelfRefs BEFORE DELETE ON ValidPaths
  BEGIN
    DELETE FROM Refs WHERE referrer = old.id AND reference = old.id;
  END;
CREATE TABLE IF NOT EXISTS DerivationOutputs (
    drv  integer not null,
    id   text not null,
    path text not null,
    primary key (drv, id),
    foreign key (drv) references ValidPaths(id) on delete cascade
);
CREATE INDEX IF NOT EXISTS IndexDerivationOutputs ON DerivationOutputs(path);
`
