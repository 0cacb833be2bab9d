/**
 * The key a phone number is matched by: spaces and dashes dropped, and the country prefix of
 * mainland China (+86, 0086) too, so "+86 138-0013-8000" finds "13800138000". Numbers are
 * stored as given; only matching uses the key.
 */
export const phoneKey = (phone: string): string => phone.replace(/[\s-]/g, "").replace(/^(\+86|0086)(?=\d)/, "")
