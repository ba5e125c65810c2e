import sys, json, hashlib, binascii, datetime, struct
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives import hashes, serialization
def rs(sig): return encode_dss_signature(int.from_bytes(sig[:32],'big'), int.from_bytes(sig[32:64],'big'))
def pem_chain(s): 
    return x509.load_pem_x509_certificates(s if isinstance(s,bytes) else s.encode())
def verify_cert(child, parent):
    parent.public_key().verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(child.signature_hash_algorithm))
def fp(c): return hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()
q=binascii.unhexlify(open(sys.argv[1]).read().strip().removeprefix('0x'))
col=json.load(open(sys.argv[2]))
ver,akt,tee=struct.unpack_from('<HHI',q,0)
print('quote len',len(q),'version',ver,'att_key_type',akt,'tee_type',hex(tee),'qe_vendor_id',q[12:28].hex(),'user_data',q[28:48].hex())
if tee==0x81:
    B=48; names=[('tee_tcb_svn',16),('mrseam',48),('mrsignerseam',48),('seam_attributes',8),('td_attributes',8),('xfam',8),('mrtd',48),('mrconfigid',48),('mrowner',48),('mrownerconfig',48),('rtmr0',48),('rtmr1',48),('rtmr2',48),('rtmr3',48),('report_data',64)]
    body_len=584
else:
    B=48; names=[('cpusvn',16),('miscselect',4),('reserved1',28),('attributes',16),('mrenclave',32),('reserved2',32),('mrsigner',32),('reserved3',96),('isvprodid',2),('isvsvn',2),('reserved4',60),('report_data',64)]
    body_len=384
o=B
for n,l in names:
    if not n.startswith('reserved'): print(f'  body+{o-B:#x} (abs {o:#x}) {n}: {q[o:o+l].hex()}')
    o+=l
assert o==B+body_len
sl=struct.unpack_from('<I',q,o)[0]; o+=4; print('sig_data_len',sl,'at',hex(o-4)); sd=q[o:o+sl]
sig=sd[:64]; ak=sd[64:128]; p=128
if ver>=4:
    ctype,csize=struct.unpack_from('<HI',sd,p); p+=6; print('outer cert type',ctype,'size',csize)
else: ctype=None
if ctype==6:
    qerep=sd[p:p+384]; p+=384; qesig=sd[p:p+64]; p+=64
    (adl,)=struct.unpack_from('<H',sd,p); p+=2; qeauth=sd[p:p+adl]; p+=adl
    ctype2,csize2=struct.unpack_from('<HI',sd,p); p+=6; chain=sd[p:p+csize2]; print('inner cert type',ctype2,'size',csize2,'qe_auth_data',qeauth.hex())
else:
    qerep=sd[p:p+384]; p+=384; qesig=sd[p:p+64]; p+=64
    (adl,)=struct.unpack_from('<H',sd,p); p+=2; qeauth=sd[p:p+adl]; p+=adl
    ctype2,csize2=struct.unpack_from('<HI',sd,p); p+=6; chain=sd[p:p+csize2]; print('cert type',ctype2,'size',csize2)
# 1 quote signature with attestation key
pub=ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b'\x04'+ak)
pub.verify(rs(sig), q[:B+body_len], ec.ECDSA(hashes.SHA256())); print('OK quote signature (att key)')
# 2 QE report data binds att key
assert hashlib.sha256(ak+qeauth).digest()==qerep[320:352] and qerep[352:384]==b'\0'*32; print('OK qe report_data = sha256(attkey||qe_auth_data)')
print('  QE mrenclave',qerep[64:96].hex(),'mrsigner',qerep[128:160].hex(),'isvprodid',struct.unpack_from('<H',qerep,256)[0],'isvsvn',struct.unpack_from('<H',qerep,258)[0],'attributes',qerep[48:64].hex(),'miscselect',qerep[16:20].hex())
certs=pem_chain(chain.rstrip(b'\0'))
pck=certs[0]
pck.public_key().verify(rs(qesig), qerep, ec.ECDSA(hashes.SHA256())); print('OK QE report signature (PCK)')
for c in certs: print('  cert',c.subject.rfc4514_string(),'|',c.not_valid_before_utc,'->',c.not_valid_after_utc,'serial',hex(c.serial_number),'sha256',fp(c))
for a,b in zip(certs,certs[1:]): verify_cert(a,b)
verify_cert(certs[-1],certs[-1]); print('OK PCK chain to self-signed root', fp(certs[-1]))
# PCK extensions
ext=[e for e in pck.extensions if e.oid.dotted_string=='1.2.840.113741.1.13.1'][0].value.value
def find(der, oid_bytes):
    i=der.find(oid_bytes); return i
fm=bytes.fromhex('060a2a864886f84d010d0104'); i=ext.find(fm); print('  FMSPC',ext[i+len(fm)+2:i+len(fm)+8].hex())
pc=bytes.fromhex('060a2a864886f84d010d0103'); i=ext.find(pc); print('  PCE-ID',ext[i+len(pc)+2:i+len(pc)+4].hex())
pp=bytes.fromhex('060a2a864886f84d010d0101'); i=ext.find(pp); print('  PPID',ext[i+len(pp)+2:i+len(pp)+18].hex())
tc=bytes.fromhex('060b2a864886f84d010d010211'); i=ext.find(tc); print('  PCESVN', ext[i+len(tc)+2:i+len(tc)+2+ext[i+len(tc)+1]].hex())
cs=bytes.fromhex('060b2a864886f84d010d010212'); i=ext.find(cs); print('  CPUSVN', ext[i+len(cs)+2:i+len(cs)+18].hex())
# collateral
for k in ('tcb_info','qe_identity'):
    ch=pem_chain(col[k+'_issuer_chain']); 
    for c in ch: print('  ',k,'chain',c.subject.rfc4514_string(),c.not_valid_before_utc,'->',c.not_valid_after_utc,'sha256',fp(c))
    verify_cert(ch[0],ch[1]); verify_cert(ch[1],ch[1]); assert fp(ch[1])==fp(certs[-1])
    s=bytes.fromhex(col[k+'_signature'])
    ch[0].public_key().verify(rs(s), col[k].encode(), ec.ECDSA(hashes.SHA256())); print('OK',k,'signature; body',{x:json.loads(col[k])[x] for x in ('id','issueDate','nextUpdate','tcbEvaluationDataNumber') if x in json.loads(col[k])}, 'fmspc', json.loads(col[k]).get('fmspc'))
ch=pem_chain(col['pck_crl_issuer_chain']); verify_cert(ch[0],ch[1]); assert fp(ch[1])==fp(certs[-1])
for k,issuer in (('pck_crl',ch[0]),('root_ca_crl',ch[1])):
    crl=x509.load_der_x509_crl(bytes.fromhex(col[k]))
    assert crl.is_signature_valid(issuer.public_key())
    revoked=[r.serial_number for r in crl]
    print('OK',k,'signed by',issuer.subject.rfc4514_string(),'thisUpdate',crl.last_update_utc,'nextUpdate',crl.next_update_utc,'revoked',len(revoked),'pck revoked?', pck.serial_number in revoked or certs[1].serial_number in revoked)
print('pck_crl issuer == PCK issuer:', ch[0].subject==certs[1].subject)
