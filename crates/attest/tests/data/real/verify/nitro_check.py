import sys, base64, hashlib, datetime, struct
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives import hashes, serialization
def dec(b,i=0):
    ib=b[i]; mt=ib>>5; ai=ib&31; i+=1
    if ai<24: v=ai
    elif ai==24: v=b[i]; i+=1
    elif ai==25: v=struct.unpack_from('>H',b,i)[0]; i+=2
    elif ai==26: v=struct.unpack_from('>I',b,i)[0]; i+=4
    elif ai==27: v=struct.unpack_from('>Q',b,i)[0]; i+=8
    else: raise ValueError('indef')
    if mt==0: return v,i
    if mt==1: return -1-v,i
    if mt==2: return bytes(b[i:i+v]),i+v
    if mt==3: return b[i:i+v].decode(),i+v
    if mt==4:
        out=[]; 
        for _ in range(v): x,i=dec(b,i); out.append(x)
        return out,i
    if mt==5:
        out={}
        for _ in range(v):
            k,i=dec(b,i); x,i=dec(b,i); out[k]=x
        return out,i
    if mt==6: x,i=dec(b,i); return ('tag',v,x),i
    if mt==7: return {20:False,21:True,22:None}.get(ai,v),i
def enc_head(mt,n):
    if n<24: return bytes([mt<<5|n])
    if n<256: return bytes([mt<<5|24,n])
    if n<65536: return bytes([mt<<5|25])+struct.pack('>H',n)
    return bytes([mt<<5|26])+struct.pack('>I',n)
raw=base64.b64decode(open(sys.argv[1]).read())
cose,end=dec(raw); assert end==len(raw)
if isinstance(cose,tuple): cose=cose[2]
prot,unprot,payload,sig=cose
print('COSE_Sign1 untagged array of 4; protected',prot.hex(),dec(prot)[0],'unprotected',unprot,'payload',len(payload),'sig',len(sig))
doc,_=dec(payload)
for k,v in doc.items():
    if k=='pcrs': 
        for pi,pv in sorted(v.items()): print('  pcr',pi,pv.hex())
    elif k=='cabundle': print('  cabundle',len(v),'certs')
    elif isinstance(v,bytes): print(' ',k,len(v),v.hex()[:200])
    else: print(' ',k,v)
print('  timestamp UTC', datetime.datetime.fromtimestamp(doc['timestamp']/1000, datetime.timezone.utc))
# Sig_structure
sigstruct=enc_head(4,4)+enc_head(3,10)+b'Signature1'+enc_head(2,len(prot))+prot+enc_head(2,0)+enc_head(2,len(payload))+payload
leaf=x509.load_der_x509_certificate(doc['certificate'])
leaf.public_key().verify(encode_dss_signature(int.from_bytes(sig[:48],'big'),int.from_bytes(sig[48:],'big')), sigstruct, ec.ECDSA(hashes.SHA384()))
print('OK COSE ES384 signature by leaf', leaf.subject.rfc4514_string())
chain=[x509.load_der_x509_certificate(c) for c in doc['cabundle']]
allc=chain+[leaf]
for c in allc: print('  ',c.subject.rfc4514_string(),'|',c.not_valid_before_utc,'->',c.not_valid_after_utc,'sha256',hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest())
for parent,child in zip(allc,allc[1:]):
    parent.public_key().verify(child.signature, child.tbs_certificate_bytes, ec.ECDSA(child.signature_hash_algorithm))
chain[0].public_key().verify(chain[0].signature, chain[0].tbs_certificate_bytes, ec.ECDSA(chain[0].signature_hash_algorithm))
print('OK chain cabundle[0] (self-signed root) -> ... -> leaf')
lo=max(c.not_valid_before_utc for c in allc); hi=min(c.not_valid_after_utc for c in allc); print('  common validity window',lo,'->',hi)
if len(sys.argv)>2: open(sys.argv[2],'w').write(chain[0].public_bytes(serialization.Encoding.PEM).decode())
