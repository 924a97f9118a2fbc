#!/usr/bin/python3
"""Reference packets for the vswitch-srv6 unit tests.

Run once with Debian's scapy (`/usr/bin/python3`, package python3-scapy;
the pyenv python3 on PATH has no scapy):

    /usr/bin/python3 srv6/tests/scapy/gen_vectors.py

The hex strings it prints are embedded in the tests (src/behavior/*.rs);
this script is kept so they can be regenerated and reviewed. UDP checksums
are pinned (chksum=...) so the vectors do not depend on how scapy picks the
pseudo-header destination of a routed packet.
"""
from scapy.all import Ether, IP, UDP, raw
from scapy.layers.inet6 import IPv6, IPv6ExtHdrSegmentRouting


def show(name, pkt):
    print(f"{name} = {raw(pkt).hex()}")


SRC = "2001:db8::1"
SEGS = ["fc00:3::", "fc00:2::", "fc00:1::"]  # Segment List[0] first
udp = UDP(sport=1234, dport=5678, chksum=0x1234) / b"hello"

# End: SL 1 -> 0, DA Segment List[1] -> Segment List[0], hop limit 64 -> 63.
show("END_IN", IPv6(src=SRC, dst="fc00:2::", hlim=64) / IPv6ExtHdrSegmentRouting(nh=17, addresses=SEGS, segleft=1) / udp)
show("END_OUT", IPv6(src=SRC, dst="fc00:3::", hlim=63) / IPv6ExtHdrSegmentRouting(nh=17, addresses=SEGS, segleft=0) / udp)
# End with PSP: the SRH is popped at the penultimate segment.
show("END_PSP_OUT", IPv6(src=SRC, dst="fc00:3::", hlim=63, nh=17) / udp)

# H.Encaps of an IPv4 packet (tos 0xb8, ttl 64) with S1 = fc00:1::, S2 = fc00:2::,
# source 2001:db8::100, traffic class copied, hop limit copied from the
# decremented TTL, flow label 0x12345 from the flow hash.
inner4 = IP(src="192.0.2.1", dst="198.51.100.1", tos=0xB8, ttl=64, id=1) / UDP(sport=1234, dport=5678, chksum=0) / b"hi"
show("INNER4", inner4)
show(
    "H_ENCAPS_V4",
    IPv6(src="2001:db8::100", dst="fc00:1::", tc=0xB8, fl=0x12345, hlim=63)
    / IPv6ExtHdrSegmentRouting(nh=4, addresses=["fc00:2::", "fc00:1::"], segleft=1)
    / IP(src="192.0.2.1", dst="198.51.100.1", tos=0xB8, ttl=63, id=1) / UDP(sport=1234, dport=5678, chksum=0) / b"hi",
)

# H.Encaps.Red of an IPv6 packet with three SIDs: the SRH holds S3, S2 only,
# Last Entry 1, Segments Left 2. Fixed hop limit 64, traffic class 0, flow label 0.
inner6 = IPv6(src="2001:db8:a::1", dst="2001:db8:b::1", hlim=10) / UDP(sport=1, dport=2, chksum=0x4321) / b"x"
show("INNER6", inner6)
show(
    "H_ENCAPS_RED_V6",
    IPv6(src="2001:db8::100", dst="fc00:1::", hlim=64)
    / IPv6ExtHdrSegmentRouting(nh=41, addresses=["fc00:3::", "fc00:2::"], segleft=2, lastentry=1)
    / IPv6(src="2001:db8:a::1", dst="2001:db8:b::1", hlim=9) / UDP(sport=1, dport=2, chksum=0x4321) / b"x",
)

# H.Encaps.L2 of an Ethernet frame with one SID (the SRH is kept: not .Red).
frame = Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / IP(src="10.0.0.1", dst="10.0.0.2", ttl=5) / b"l2"
show("FRAME", frame)
show(
    "H_ENCAPS_L2",
    IPv6(src="2001:db8::100", dst="fc00:1::", hlim=64)
    / IPv6ExtHdrSegmentRouting(nh=143, addresses=["fc00:1::"], segleft=0)
    / frame,
)
# H.Encaps.Red with one SID: no SRH at all, next header 4.
show("H_ENCAPS_RED_1SID_V4", IPv6(src="2001:db8::100", dst="fc00:1::", tc=0xB8, fl=0x12345, hlim=63, nh=4) / IP(
    src="192.0.2.1", dst="198.51.100.1", tos=0xB8, ttl=63, id=1) / UDP(sport=1234, dport=5678, chksum=0) / b"hi")
