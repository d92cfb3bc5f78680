// Package clock is the project's clock seam: every component that waits or
// reads the time takes a Clock, so tests and the scenario engine can drive
// time themselves.
//
// It exists instead of using github.com/benbjohnson/clock's interface
// directly because that interface hands out concrete *Timer and *Ticker
// structs whose Stop and Reset cannot be intercepted. The scenario engine's
// virtual clock (scenarios/engine) must see every Stop and Reset: it jumps
// time to the next armed deadline, and a stopped timer must neither fire nor
// count among the candidates of an instant. Here Timer and Ticker are
// interfaces, so an implementation learns of both.
//
// The real implementation is still the library's: New wraps clock.New(),
// and FromLibrary adapts any library clock, such as the library's Mock that
// unit tests drive (its timers and tickers support Reset).
package clock
