import Foundation
import Testing
@testable import WrennWire

@Suite struct PrefixedIDTests {
    @Test func zeroUUIDIsAllZeros() {
        let zero = UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        #expect(PrefixedID.format(zero, as: .team) == "team-" + String(repeating: "0", count: 25))
    }

    @Test func maxUUIDFitsIn25Digits() {
        let max = UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255))
        let text = PrefixedID.format(max, as: .capsule)
        #expect(text == "cl-f5lxx1zz5pnorynqglhzmsp33")
        #expect(PrefixedID.parse(text, as: .capsule) == max)
    }

    @Test(arguments: 0..<50) func roundTrips(_ seed: Int) {
        let uuid = UUID()
        let text = PrefixedID.format(uuid, as: .user)
        #expect(text.count == 4 + 25)
        #expect(PrefixedID.parse(text, as: .user) == uuid)
    }

    @Test func rejectsWrongPrefixLengthAndAlphabet() {
        let text = PrefixedID.make(.team)
        #expect(PrefixedID.parse(text, as: .user) == nil)
        #expect(PrefixedID.parse(String(text.dropLast()), as: .team) == nil)
        #expect(PrefixedID.parse(String(text.dropLast()) + "A", as: .team) == nil)
        #expect(PrefixedID.parse("team-zzzzzzzzzzzzzzzzzzzzzzzzz", as: .team) == nil) // > 2^128
    }
}
