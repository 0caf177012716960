//! The issuer master key inside a PKCS#11 token (tested against SoftHSM2), through `cryptoki`.
//!
//! The master key is a secret-key object on the token (found by label) and never leaves it:
//!
//! - **Module-key derivation** (aes-cmac profile): the KDF is one AES-CMAC block over the SCP03
//!   derivation data ([`scp03_derivation_data`]), so the token computes it with `C_Sign`
//!   (`CKM_AES_CMAC`) under the master key. The 16 bytes that come back are the module key; they
//!   are imported at once (`C_CreateObject`) as a *session* object that is sensitive and not
//!   extractable, and the host copy is zeroized. `CKM_AES_ECB_ENCRYPT_DATA` /
//!   `CKM_AES_CBC_ENCRYPT_DATA` derivation cannot compute a CMAC (the CMAC subkey and the
//!   chaining need values that would have to leave the token), and SoftHSM2 has no SP 800-108
//!   KDF mechanism, so this is the way that keeps the master key in the token and module keys
//!   out of the host except for that moment. Decision recorded here and in the README.
//!
//!   `pkcs11-tool --write-object … --type secrkey` cannot set `CKA_SIGN` on a secret key, so a
//!   master key imported with it has only `CKA_ENCRYPT`. For such a key the token computes the
//!   same CMAC from AES encryptions (SP 800-38B: L = AES-ECB(0) for the subkeys, then AES-CBC
//!   with a zero IV over the message whose last block is padded and XORed with a subkey). The
//!   host then briefly holds L as well as the module key (zeroized after use); the master key
//!   still never leaves the token. A key with `CKA_SIGN` is preferred and used with
//!   `CKM_AES_CMAC` whenever the token has it.
//! - **Tags** on grants and **verification** of requests: `C_Sign` with `CKM_AES_CMAC` under
//!   the module-key object, truncated to 8 bytes and compared in constant time by the policy
//!   ([`simkit_core::crypto::verify_profile_tag`]).
//! - **Key check values**: `C_Encrypt` with `CKM_AES_ECB` of sixteen `01` bytes, in the token
//!   (the master key object needs `CKA_ENCRYPT`; without it KCVs are reported as unavailable).
//!
//! The `retail-mac` and `desx-cbc` profiles cannot run in such a token (no ISO 9797-1 algorithm 3
//! MAC, no DES-X): [`Pkcs11Key::profiles`] leaves them out, and importing a module with either is
//! refused with a message saying it needs a software master key.
//!
//! One session (serialised by a mutex) does all the work: SoftHSM2 is fast enough that the
//! database, not the token, is the limit; a session pool is the upgrade path for a network HSM.
//! The library is loaded and `C_Initialize`d once per process and path (PKCS#11 allows one
//! initialisation per process) and never finalised.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use simkit_core::credit::ModuleId;
use simkit_core::credit::registration::{REGISTRATION_FORMAT, Registration, RegistrationError};
use simkit_core::crypto::kdf::{DC_GRANT, DC_REQUEST, scp03_derivation_data};
use simkit_core::crypto::{CryptoError, MacKey, Profile, SecretKey, TAG_LEN};
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{KeyError, KeySource, ModuleKey, ModuleMacKeys, check_kcv};

/// Which slot holds the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlotChoice {
    /// A slot id as listed by `pkcs11-tool -L` / `softhsm2-util --show-slots`.
    Id(u64),
    /// The token with this label (CKA_LABEL of the token, trailing blanks ignored).
    TokenLabel(String),
}

/// Where the master key is and how to log in. `Debug` never shows the PIN.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// Path of the PKCS#11 module (e.g. `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The slot or token.
    pub slot: SlotChoice,
    /// The user PIN.
    pub pin: Zeroizing<String>,
    /// CKA_LABEL of the master key object (a secret key).
    pub key_label: String,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("slot", &self.slot)
            .field("key_label", &self.key_label)
            .finish_non_exhaustive()
    }
}

/// What the token can do for each profile, for the startup log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capability {
    /// The profile.
    pub profile: Profile,
    /// `None` when the token serves it with this key; otherwise why not.
    pub missing: Option<String>,
}

/// Why `profile` cannot run in a token, in the words an operator needs.
pub fn unsupported_reason(profile: Profile) -> String {
    match profile {
        Profile::AesCmac => "profile aes-cmac needs an AES-128 master key object with CKA_SIGN \
                             or CKA_ENCRYPT on a token with CKM_AES_CMAC"
            .to_owned(),
        Profile::RetailMac => "profile retail-mac needs a software master key: this PKCS#11 \
                               token (SoftHSM2 too) has no ISO 9797-1 alg 3 MAC (retail MAC)"
            .to_owned(),
        Profile::DesxCbc => "profile desx-cbc needs a software master key: this PKCS#11 token \
                             (SoftHSM2 too) has no DES-X"
            .to_owned(),
    }
}

fn ck(what: &str, e: CkError) -> KeyError {
    KeyError::Pkcs11(format!("{what}: {e}"))
}

fn ck_crypto(what: &str, e: CkError) -> CryptoError {
    CryptoError::KeyStore(format!("PKCS#11 {what}: {e}"))
}

/// One loaded and initialised library per path, for the whole process.
fn context(module: &Path) -> Result<Pkcs11, KeyError> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let map = CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut map = map
        .lock()
        .map_err(|_| KeyError::Pkcs11("the library table lock is poisoned".into()))?;
    if let Some(p) = map.get(module) {
        return Ok(p.clone());
    }
    if !module.exists() {
        return Err(KeyError::Pkcs11(format!(
            "PKCS#11 module {} does not exist (for SoftHSM2 install the Debian package softhsm2: \
             /usr/lib/softhsm/libsofthsm2.so)",
            module.display()
        )));
    }
    let p = Pkcs11::new(module).map_err(|e| {
        KeyError::Pkcs11(format!("loading PKCS#11 module {}: {e}", module.display()))
    })?;
    match p.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(ck(&format!("C_Initialize of {}", module.display()), e)),
    }
    map.insert(module.to_path_buf(), p.clone());
    Ok(p)
}

fn find_slot(p: &Pkcs11, choice: &SlotChoice) -> Result<(Slot, String), KeyError> {
    let slots = p
        .get_slots_with_token()
        .map_err(|e| ck("listing slots", e))?;
    let mut seen = Vec::new();
    for slot in slots {
        let label = match p.get_token_info(slot) {
            Ok(info) => info.label().trim_end().to_owned(),
            Err(_) => continue,
        };
        let hit = match choice {
            SlotChoice::Id(id) => slot.id() == *id,
            SlotChoice::TokenLabel(l) => label == l.trim_end(),
        };
        if hit {
            return Ok((slot, label));
        }
        seen.push(format!("slot {} token {label:?}", slot.id()));
    }
    let wanted = match choice {
        SlotChoice::Id(id) => format!("no slot {id} with a token"),
        SlotChoice::TokenLabel(l) => format!("no token labelled {l:?}"),
    };
    Err(KeyError::Pkcs11(if seen.is_empty() {
        format!("{wanted}: the module has no initialised token")
    } else {
        format!("{wanted}; the module has: {}", seen.join(", "))
    }))
}

/// The session and the master key handle, shared with the module-key objects.
struct Shared {
    session: Mutex<Session>,
    token_label: String,
}

impl Shared {
    fn with<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CryptoError>,
    ) -> Result<T, CryptoError> {
        let session = self
            .session
            .lock()
            .map_err(|_| CryptoError::KeyStore("the PKCS#11 session lock is poisoned".into()))?;
        f(&session)
    }

    fn aes_kcv(&self, key: ObjectHandle) -> Result<[u8; 3], CryptoError> {
        self.with(|s| {
            let out = s
                .encrypt(&Mechanism::AesEcb, key, &[0x01; 16])
                .map_err(|e| ck_crypto("C_Encrypt (key check value; needs CKA_ENCRYPT)", e))?;
            match out.as_slice() {
                [a, b, c, ..] => Ok([*a, *b, *c]),
                _ => Err(CryptoError::KeyStore(
                    "C_Encrypt answered fewer than 3 bytes".into(),
                )),
            }
        })
    }

    fn cmac(&self, key: ObjectHandle, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        self.with(|s| {
            let out = Zeroizing::new(
                s.sign(&Mechanism::AesCMac, key, data)
                    .map_err(|e| ck_crypto("C_Sign (AES-CMAC)", e))?,
            );
            if out.len() != 16 {
                return Err(CryptoError::KeyStore(format!(
                    "C_Sign (AES-CMAC) answered {} bytes, expected 16",
                    out.len()
                )));
            }
            Ok(out)
        })
    }
}

/// A module key as a sensitive, non-extractable session object; destroyed when dropped.
struct TokenModuleKey {
    shared: Arc<Shared>,
    handle: ObjectHandle,
}

impl MacKey for TokenModuleKey {
    fn profile_tag(&self, profile: Profile, data: &[u8]) -> Result<[u8; TAG_LEN], CryptoError> {
        if profile != Profile::AesCmac {
            return Err(CryptoError::KeyStore(unsupported_reason(profile)));
        }
        let full = self.shared.cmac(self.handle, data)?;
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        Ok(tag)
    }
}

impl ModuleKey for TokenModuleKey {
    fn kcv(&self, profile: Profile) -> Result<[u8; 3], CryptoError> {
        if profile != Profile::AesCmac {
            return Err(CryptoError::KeyStore(unsupported_reason(profile)));
        }
        self.shared.aes_kcv(self.handle)
    }
}

impl Drop for TokenModuleKey {
    fn drop(&mut self) {
        // A session object also disappears with the session; destroying it now keeps the
        // token's object table small. Nothing useful can be done if this fails.
        let _ = self.shared.with(|s| {
            s.destroy_object(self.handle)
                .map_err(|e| ck_crypto("C_DestroyObject", e))
        });
    }
}

/// How the token computes the KDF's CMAC under the master key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Derivation {
    /// `C_Sign` with `CKM_AES_CMAC` (the master key has `CKA_SIGN`).
    Sign,
    /// `C_Encrypt` with `CKM_AES_ECB` and `CKM_AES_CBC` (the master key has `CKA_ENCRYPT`).
    Encrypt,
}

/// AES-CMAC subkey doubling in GF(2^128) (SP 800-38B).
fn dbl(b: &[u8; 16]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for i in 0..16 {
        out[i] = (b[i] << 1) | b.get(i + 1).map_or(0, |n| n >> 7);
    }
    if b[0] & 0x80 != 0 {
        out[15] ^= 0x87;
    }
    out
}

/// The issuer master key as an object in a PKCS#11 token. See the module documentation.
pub struct Pkcs11Key {
    shared: Arc<Shared>,
    master: ObjectHandle,
    derivation: Option<Derivation>,
    key_type: KeyType,
    mechanisms: Vec<MechanismType>,
    label: String,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key")
            .field("token", &self.shared.token_label)
            .field("key_label", &self.label)
            .field("key_type", &self.key_type.to_string())
            .finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Loads the module, finds the slot, logs in with the PIN and finds the master key by
    /// label. Each failure names what was wrong (missing library, slot, token, PIN, key).
    pub fn open(config: &Pkcs11Config) -> Result<Self, KeyError> {
        let p = context(&config.module)?;
        let (slot, token_label) = find_slot(&p, &config.slot)?;
        let mechanisms = p
            .get_mechanism_list(slot)
            .map_err(|e| ck("listing the token's mechanisms", e))?;
        let session = p
            .open_rw_session(slot)
            .map_err(|e| ck(&format!("opening a session on token {token_label:?}"), e))?;
        let pin = AuthPin::new(Box::from(config.pin.as_str()));
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => {
                return Err(KeyError::Pkcs11(format!(
                    "wrong user PIN for token {token_label:?}"
                )));
            }
            Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                return Err(KeyError::Pkcs11(format!(
                    "the user PIN of token {token_label:?} is locked"
                )));
            }
            Err(e) => return Err(ck(&format!("logging in to token {token_label:?}"), e)),
        }
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(config.key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| ck("searching for the master key", e))?;
        let master = match found.as_slice() {
            [one] => *one,
            [] => {
                return Err(KeyError::Pkcs11(format!(
                    "no secret key labelled {:?} on token {token_label:?}",
                    config.key_label
                )));
            }
            more => {
                return Err(KeyError::Pkcs11(format!(
                    "{} secret keys are labelled {:?} on token {token_label:?}; labels must be \
                     unique",
                    more.len(),
                    config.key_label
                )));
            }
        };
        let attrs = session
            .get_attributes(
                master,
                &[
                    AttributeType::KeyType,
                    AttributeType::Sign,
                    AttributeType::Encrypt,
                ],
            )
            .map_err(|e| ck("reading the master key's attributes", e))?;
        let flag = |want: AttributeType| {
            attrs.iter().any(|a| match a {
                Attribute::Sign(true) => want == AttributeType::Sign,
                Attribute::Encrypt(true) => want == AttributeType::Encrypt,
                _ => false,
            })
        };
        let has = |m: MechanismType| mechanisms.contains(&m);
        let derivation = if flag(AttributeType::Sign) && has(MechanismType::AES_CMAC) {
            Some(Derivation::Sign)
        } else if flag(AttributeType::Encrypt)
            && has(MechanismType::AES_ECB)
            && has(MechanismType::AES_CBC)
        {
            Some(Derivation::Encrypt)
        } else {
            None
        };
        let key_type = attrs
            .iter()
            .find_map(|a| match a {
                Attribute::KeyType(t) => Some(*t),
                _ => None,
            })
            .ok_or_else(|| KeyError::Pkcs11("the master key has no CKA_KEY_TYPE".into()))?;
        Ok(Pkcs11Key {
            shared: Arc::new(Shared {
                session: Mutex::new(session),
                token_label,
            }),
            master,
            derivation,
            key_type,
            mechanisms,
            label: config.key_label.clone(),
        })
    }

    /// The token's label.
    pub fn token_label(&self) -> &str {
        &self.shared.token_label
    }

    /// What the token can do with this key, profile by profile (for the startup log).
    pub fn capabilities(&self) -> Vec<Capability> {
        Profile::ALL
            .into_iter()
            .map(|profile| Capability {
                profile,
                missing: self.check_profile(profile).err(),
            })
            .collect()
    }

    fn check_profile(&self, profile: Profile) -> Result<(), String> {
        match profile {
            Profile::AesCmac
                if self.key_type == KeyType::AES
                    && self.derivation.is_some()
                    && self.mechanisms.contains(&MechanismType::AES_CMAC) =>
            {
                Ok(())
            }
            p => Err(unsupported_reason(p)),
        }
    }

    fn require(&self, profile: Profile) -> Result<(), KeyError> {
        self.check_profile(profile)
            .map_err(KeyError::UnsupportedProfile)
    }

    /// AES-CMAC under the master key, computed by the token (see [`Derivation`]).
    fn master_cmac(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self.derivation {
            Some(Derivation::Sign) => self.shared.cmac(self.master, data),
            Some(Derivation::Encrypt) => self.shared.with(|s| {
                let enc = |m: &Mechanism, d: &[u8]| {
                    s.encrypt(m, self.master, d)
                        .map(Zeroizing::new)
                        .map_err(|e| ck_crypto("C_Encrypt (AES-CMAC by encryption)", e))
                };
                let l = enc(&Mechanism::AesEcb, &[0u8; 16])?;
                let mut l16 = Zeroizing::new([0u8; 16]);
                if l.len() != 16 {
                    return Err(CryptoError::KeyStore("C_Encrypt answered no block".into()));
                }
                l16.copy_from_slice(&l);
                let k1 = Zeroizing::new(dbl(&l16));
                let k2 = Zeroizing::new(dbl(&k1));
                let full = !data.is_empty() && data.len() % 16 == 0;
                let mut m = Zeroizing::new(data.to_vec());
                if !full {
                    m.push(0x80);
                    let padded = m.len().next_multiple_of(16);
                    m.resize(padded, 0);
                }
                let last = m.len() - 16;
                let sub = if full { &k1 } else { &k2 };
                for (x, k) in m[last..].iter_mut().zip(sub.iter()) {
                    *x ^= k;
                }
                let ct = enc(&Mechanism::AesCbc([0u8; 16]), &m)?;
                if ct.len() != m.len() {
                    return Err(CryptoError::KeyStore(
                        "C_Encrypt (AES-CBC) answered a short result".into(),
                    ));
                }
                Ok(Zeroizing::new(ct[last..].to_vec()))
            }),
            None => Err(CryptoError::KeyStore(unsupported_reason(Profile::AesCmac))),
        }
    }

    /// Derives one module key in the token and imports it as a session object.
    fn derive(&self, dc: u8, module_id: &ModuleId) -> Result<TokenModuleKey, KeyError> {
        let data = scp03_derivation_data(dc, module_id);
        let value = self.master_cmac(&data)?;
        let mut template = vec![
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Token(false),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Verify(true),
            Attribute::Encrypt(true),
            Attribute::Value(value.to_vec()),
        ];
        let created = self.shared.with(|s| {
            s.create_object(&template)
                .map_err(|e| ck_crypto("C_CreateObject (module key)", e))
        });
        for a in &mut template {
            if let Attribute::Value(v) = a {
                v.zeroize();
            }
        }
        Ok(TokenModuleKey {
            shared: self.shared.clone(),
            handle: created?,
        })
    }
}

impl KeySource for Pkcs11Key {
    fn master_key(&self) -> Result<SecretKey, KeyError> {
        Err(KeyError::NotExportable(format!(
            "it is key {:?} inside PKCS#11 token {:?}",
            self.label, self.shared.token_label
        )))
    }

    fn kcv_hex(&self, profile: Profile) -> Result<String, KeyError> {
        self.require(profile)?;
        Ok(hex::encode_upper(self.shared.aes_kcv(self.master)?))
    }

    fn profiles(&self) -> Result<Vec<Profile>, KeyError> {
        Ok(Profile::ALL
            .into_iter()
            .filter(|p| self.check_profile(*p).is_ok())
            .collect())
    }

    fn module_keys(
        &self,
        profile: Profile,
        module_id: &ModuleId,
    ) -> Result<ModuleMacKeys, KeyError> {
        self.require(profile)?;
        Ok(ModuleMacKeys {
            request: Box::new(self.derive(DC_REQUEST, module_id)?),
            grant: Box::new(self.derive(DC_GRANT, module_id)?),
        })
    }

    fn check_registration(&self, registration: &Registration) -> Result<(), RegistrationError> {
        if registration.format != REGISTRATION_FORMAT {
            return Err(RegistrationError::Format(registration.format.clone()));
        }
        registration.limits.validate()?;
        let profile = registration.profile;
        let key_err = |e: KeyError| RegistrationError::Crypto(CryptoError::KeyStore(e.to_string()));
        self.require(profile).map_err(key_err)?;
        let master_kcv = self.shared.aes_kcv(self.master)?;
        check_kcv("master", &registration.master_key_kcv, master_kcv)?;
        let keys = self
            .module_keys(profile, &registration.module_id)
            .map_err(key_err)?;
        check_kcv(
            "request",
            &registration.request_key_kcv,
            keys.request.kcv(profile)?,
        )?;
        check_kcv(
            "grant",
            &registration.grant_key_kcv,
            keys.grant.kcv(profile)?,
        )?;
        Ok(())
    }
}
