/*
	xs-ota native helper: the few ESP-IDF OTA calls that Moddable's JavaScript API does not reach.
	Bound to JavaScript by manifest.json's "ffi" section (import FFI from "mc/ffi"), which generates the
	glue; FFI results cannot be pointers, hence these small wrappers around the esp_partition_t* calls.
	Written from ESP-IDF's documented API: esp_ota_ops.h, esp_partition.h, esp_app_desc.h, esp_system.h.
	Needs CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE (boards/esp32/sdkconfig.defaults) for the image states.
*/

#include <stdint.h>
#include <string.h>

// Moddable's ESP32 build puts $(IDF_PATH)/components on the include path, not app_update's own folder.
#include "app_update/include/esp_ota_ops.h"
#include "esp_app_desc.h"
#include "esp_partition.h"
#include "esp_system.h"
// PSA is Mbed TLS's public crypto API: the only one in ESP-IDF 6 (Mbed TLS 4 made ecdsa.h and ecp.h private),
// and IDF links it for its own TLS. Moddable compiles this file without the configuration IDF builds Mbed TLS
// with, so it is named here, as IDF's mbedtls component does for its users: the PSA structures must have the
// library's layout. The include folders are in boards/esp32-common.json.
#ifndef MBEDTLS_CONFIG_FILE
#define MBEDTLS_CONFIG_FILE "mbedtls/esp_config.h"
#endif
#ifndef TF_PSA_CRYPTO_USER_CONFIG_FILE
#define TF_PSA_CRYPTO_USER_CONFIG_FILE "mbedtls/esp_config.h"
#endif
#include "psa/crypto.h"
#include "mbedtls/psa_util.h"

int32_t xs_ota_running_slot(void);
int32_t xs_ota_running_state(void);
int32_t xs_ota_running_version(uint8_t *into);
int32_t xs_ota_set_boot_next(void);
int32_t xs_ota_erase_next(int32_t offset, int32_t byteLength);
int32_t xs_ota_mark_valid(void);
void xs_ota_restart(void);
int32_t xs_ota_verify_p256(uint8_t *sha256, uint8_t *signature, int32_t signatureLength, uint8_t *publicKey);
int32_t xs_ota_verify_rsa3072_pss(uint8_t *sha256, uint8_t *modulus, int32_t exponent, uint8_t *signature);

// Index of the OTA slot the running image was booted from (0 for ota_0), or -1 for a factory or test app.
int32_t xs_ota_running_slot(void)
{
	const esp_partition_t *running = esp_ota_get_running_partition();
	if (!running || (running->type != ESP_PARTITION_TYPE_APP))
		return -1;
	if ((running->subtype < ESP_PARTITION_SUBTYPE_APP_OTA_MIN) || (running->subtype >= ESP_PARTITION_SUBTYPE_APP_OTA_MAX))
		return -1;
	return (int32_t)(running->subtype - ESP_PARTITION_SUBTYPE_APP_OTA_0);
}

// esp_ota_img_states_t of the running slot (PENDING_VERIFY = 1 on the first boot of a new image), or -1
// when otadata has no entry for it: a factory app, or an image flashed over USB.
int32_t xs_ota_running_state(void)
{
	esp_ota_img_states_t state;
	if (esp_ota_get_state_partition(esp_ota_get_running_partition(), &state) != ESP_OK)
		return -1;
	if (state == ESP_OTA_IMG_UNDEFINED)
		return -1;
	return (int32_t)state;
}

// Copies the running image's version string (esp_app_desc_t.version, NUL-terminated unless all 32 bytes
// are used) into a buffer of at least 32 bytes, which the "uint8_t[32]" FFI argument type checks.
// Returns the length copied, without the NUL.
int32_t xs_ota_running_version(uint8_t *into)
{
	const esp_app_desc_t *description = esp_app_get_description();
	size_t length = strnlen(description->version, sizeof(description->version));
	memcpy(into, description->version, length);
	return (int32_t)length;
}

// Makes the inactive OTA slot (the one Moddable's new Flash("nextota") writes) the boot slot.
// esp_ota_set_boot_partition verifies the image first and returns ESP_ERR_OTA_VALIDATE_FAILED if it
// would not boot; with rollback enabled the new otadata entry starts as ESP_OTA_IMG_NEW.
int32_t xs_ota_set_boot_next(void)
{
	const esp_partition_t *next = esp_ota_get_next_update_partition(NULL);
	if (!next)
		return ESP_ERR_NOT_FOUND;
	return esp_ota_set_boot_partition(next);
}

// Erases [offset, offset + byteLength) of the inactive OTA slot, both whole 4 KiB sectors. Moddable's flash.erase
// clears one sector per call; esp_partition_erase_range takes a range, and its flash driver clears each 64 KiB-
// aligned 64 KiB stretch with one block erase (150 ms typical on a W25Q32JV, against 16 x 45 ms sector by sector).
// App partitions start 64 KiB-aligned, so a slot-relative block is a chip block. Returns the esp_err_t.
int32_t xs_ota_erase_next(int32_t offset, int32_t byteLength)
{
	const esp_partition_t *next = esp_ota_get_next_update_partition(NULL);
	if (!next)
		return ESP_ERR_NOT_FOUND;
	if ((offset < 0) || (byteLength < 0))
		return ESP_ERR_INVALID_ARG;
	return esp_partition_erase_range(next, (size_t)offset, (size_t)byteLength);
}

// Confirms the running image (PENDING_VERIFY -> VALID) so the bootloader will not roll it back.
int32_t xs_ota_mark_valid(void)
{
	return esp_ota_mark_app_valid_cancel_rollback();
}

void xs_ota_restart(void)
{
	esp_restart();
}

// AWS OTA code signing: ECDSA P-256 over the image's SHA-256. `signature` is DER (at most 72 bytes),
// `publicKey` an uncompressed point (65 bytes). Returns 1 when it verifies, 0 otherwise. PSA verifies
// the raw R||S form, so the DER signature is converted first; a malformed one fails there.
int32_t xs_ota_verify_p256(uint8_t *sha256, uint8_t *signature, int32_t signatureLength, uint8_t *publicKey)
{
	const psa_algorithm_t algorithm = PSA_ALG_ECDSA(PSA_ALG_SHA_256);
	uint8_t raw[64];
	size_t rawLength = 0;
	if ((signatureLength <= 0) || (signatureLength > 72))
		return 0;
	if (mbedtls_ecdsa_der_to_raw(256, signature, (size_t)signatureLength, raw, sizeof(raw), &rawLength) != 0)
		return 0;
	// Once per boot in practice; later calls return at once.
	if (psa_crypto_init() != PSA_SUCCESS)
		return 0;

	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	psa_set_key_type(&attributes, PSA_KEY_TYPE_ECC_PUBLIC_KEY(PSA_ECC_FAMILY_SECP_R1));
	psa_set_key_bits(&attributes, 256);
	psa_set_key_usage_flags(&attributes, PSA_KEY_USAGE_VERIFY_HASH);
	psa_set_key_algorithm(&attributes, algorithm);
	mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
	if (psa_import_key(&attributes, publicKey, 65, &key) != PSA_SUCCESS)
		return 0;
	psa_status_t status = psa_verify_hash(key, algorithm, sha256, 32, raw, rawLength);
	psa_destroy_key(key);
	return (status == PSA_SUCCESS) ? 1 : 0;
}

// Secure Boot v2 RSA-3072 signature blocks: RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (the hash
// length, which is what PSA_ALG_RSA_PSS accepts) over the signed data's SHA-256. `modulus` and `signature` are
// big-endian, 384 bytes each. Returns 1 when it verifies, 0 otherwise. PSA imports an RSA public key as DER
// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }, built here.
int32_t xs_ota_verify_rsa3072_pss(uint8_t *sha256, uint8_t *modulus, int32_t exponent, uint8_t *signature)
{
	enum { modulusLength = 384 };
	const psa_algorithm_t algorithm = PSA_ALG_RSA_PSS(PSA_ALG_SHA_256);
	uint8_t der[4 + 5 + modulusLength + 7];
	size_t exponentLength = 0, at = 0;
	uint8_t exponentBytes[5];
	if ((exponent <= 0) || !(modulus[0] & 0x80))	// a 3072-bit modulus fills its top byte
		return 0;
	for (int shift = 24; shift >= 0; shift -= 8) {
		uint8_t byte = (uint8_t)((uint32_t)exponent >> shift);
		if (exponentLength || byte)
			exponentBytes[exponentLength++] = byte;
	}
	if (exponentBytes[0] & 0x80) {	// an INTEGER is signed: keep it positive
		memmove(exponentBytes + 1, exponentBytes, exponentLength++);
		exponentBytes[0] = 0;
	}
	size_t body = (4 + 1 + modulusLength) + (2 + exponentLength);
	der[at++] = 0x30;
	der[at++] = 0x82;
	der[at++] = (uint8_t)(body >> 8);
	der[at++] = (uint8_t)body;
	der[at++] = 0x02;
	der[at++] = 0x82;
	der[at++] = (uint8_t)((modulusLength + 1) >> 8);
	der[at++] = (uint8_t)(modulusLength + 1);
	der[at++] = 0;
	memcpy(der + at, modulus, modulusLength);
	at += modulusLength;
	der[at++] = 0x02;
	der[at++] = (uint8_t)exponentLength;
	memcpy(der + at, exponentBytes, exponentLength);
	at += exponentLength;
	if (psa_crypto_init() != PSA_SUCCESS)
		return 0;

	psa_key_attributes_t attributes = PSA_KEY_ATTRIBUTES_INIT;
	psa_set_key_type(&attributes, PSA_KEY_TYPE_RSA_PUBLIC_KEY);
	psa_set_key_bits(&attributes, 3072);
	psa_set_key_usage_flags(&attributes, PSA_KEY_USAGE_VERIFY_HASH);
	psa_set_key_algorithm(&attributes, algorithm);
	mbedtls_svc_key_id_t key = MBEDTLS_SVC_KEY_ID_INIT;
	if (psa_import_key(&attributes, der, at, &key) != PSA_SUCCESS)
		return 0;
	psa_status_t status = psa_verify_hash(key, algorithm, sha256, 32, signature, modulusLength);
	psa_destroy_key(key);
	return (status == PSA_SUCCESS) ? 1 : 0;
}
