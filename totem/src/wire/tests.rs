use super::*;

#[test]
fn token_round_trips() {
    let t = Token { ring_id: Some(WireRingId { representative: 1, seq: 4 }), seq: 9, ..Token::default() };
    let p = Packet::Token(t);
    assert_eq!(Packet::decode(p.encode()).unwrap(), p);
}
