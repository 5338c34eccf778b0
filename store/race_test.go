//go:build race

package store

// raceEnabled shrinks tests that are slow only under the race detector.
const raceEnabled = true
