"""Tests that try hard to break SPEC §7: crashes, in-flight sends, duplicates, races, provider
faults, hostile input, access. Each prints (and records as junit properties) the numbers it used."""
