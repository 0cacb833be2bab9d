/** §2.1.5 — `POST /voip/api/upload_record_file.html`: the mobile app's recording upload (multipart). */
import { Schema } from "effect"
import { method } from "./Method.js"
import * as P from "./Param.js"

const d = P.doc

/** The file part arrives separately (multipart file); these are the text fields beside it. */
export const uploadRecordFile = method({
  name: "upload_record_file.html",
  section: "2.1.5",
  title: "上传通话文件",
  params: {
    fileName: d("文件名，Base64 编码（isBase=true 时）")(P.textMax(1024)),
    fileMd5: d("文件内容 MD5 码")(P.text.pipe(Schema.compose(Schema.String.pipe(Schema.pattern(/^[0-9a-fA-F]{32}$/, { message: () => "expected 32 hex digits" }))))),
    isBase: Schema.optional(d("设置为 true 表示 fileName 为 Base64 编码")(P.bool))
  },
  result: {
    path: d("保存后的相对路径：/voip/record/{path}（bridge 增加的字段）")(Schema.String),
    size: d("字节数（bridge 增加的字段）")(Schema.Number)
  }
})

/** Decodes `fileName` as the contract sends it (Base64 of UTF-8 when isBase). */
export const decodeFileName = (fileName: string, isBase: boolean | undefined): string | undefined => {
  if (!isBase) return fileName
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(fileName.trim())) return undefined
  return Buffer.from(fileName.trim(), "base64").toString("utf8")
}
