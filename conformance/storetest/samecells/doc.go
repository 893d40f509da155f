// Package samecells holds one test, and no code: that every store back-end
// on every dialect this machine provides gives the same answers to the
// store conformance suite (storetest.RunAnswers), case by case, as the
// issue asks ("every back-end x dialect cell must give the same answers").
//
// It lives apart from package storetest because it imports every back-end,
// which the suite itself must never do.
package samecells
