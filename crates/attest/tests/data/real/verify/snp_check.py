import sys, binascii, hashlib
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives import hashes
def load_report(p):
    d=open(p,'rb').read()
    if p.endswith('.hex'):
        d=binascii.unhexlify(b''.join(d.split()).replace(b'0x',b''))
    return d
def verify(rep, vcekpem):
    cert=x509.load_pem_x509_certificate(open(vcekpem,'rb').read())
    r=int.from_bytes(rep[0x2a0:0x2a0+72],'little'); s=int.from_bytes(rep[0x2e8:0x2e8+72],'little')
    cert.public_key().verify(encode_dss_signature(r,s), rep[:0x2a0], ec.ECDSA(hashes.SHA384()))
    return cert
def tcb(b): return dict(bl=b[0],tee=b[1],snp=b[6],ucode=b[7])
def show(rep):
    u32=lambda o:int.from_bytes(rep[o:o+4],'little'); u64=lambda o:int.from_bytes(rep[o:o+8],'little')
    print(' len',len(rep),'version',u32(0),'guest_svn',u32(4),'policy',hex(u64(8)),'vmpl',u32(0x30),'sig_algo',u32(0x34))
    print(' current_tcb',rep[0x38:0x40].hex(),tcb(rep[0x38:0x40]),'platform_info',hex(u64(0x40)),'flags(0x48)',hex(u32(0x48)))
    print(' report_data',rep[0x50:0x90].hex()); print(' measurement',rep[0x90:0xc0].hex())
    print(' host_data',rep[0xc0:0xe0].hex()); print(' id_key_digest',rep[0xe0:0x110].hex()); print(' author_key_digest',rep[0x110:0x140].hex())
    print(' report_id',rep[0x140:0x160].hex()); print(' report_id_ma',rep[0x160:0x180].hex())
    print(' reported_tcb',rep[0x180:0x188].hex(),tcb(rep[0x180:0x188]))
    if u32(0)>=3: print(' cpuid fam/mod/step (0x188..0x18a)',rep[0x188:0x18b].hex())
    print(' chip_id',rep[0x1a0:0x1e0].hex())
    print(' committed_tcb',rep[0x1e0:0x1e8].hex(),'current build/minor/major',rep[0x1e8:0x1eb].hex(),'committed b/m/M',rep[0x1ec:0x1ef].hex(),'launch_tcb',rep[0x1f0:0x1f8].hex())
if __name__=='__main__':
    rep=load_report(sys.argv[1]); show(rep)
    c=verify(rep,sys.argv[2]); print(' SIGNATURE OK with', c.subject.rfc4514_string())
    for e in c.extensions:
        if e.oid.dotted_string.startswith('1.3.6.1.4.1.3704'):
            print('  ext',e.oid.dotted_string,e.value.value.hex())
