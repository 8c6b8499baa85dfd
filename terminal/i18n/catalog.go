package i18n

// Msg identifies one word (or short phrase) of the screens and receipts.
// The comment after each ID is its English word; the zh-CN words of
// spec/terminal.md's table are the ones the test pins exactly.
type Msg uint16

// Menu entries render as "<digit> <word>" ("1 SALE", "1 消费"): the digit is
// the key, the word is the flow's title, except where spec/terminal.md
// gives the item a word of its own (ItemVoucherNo, ItemSupervisorPwd).
const (
	// Lifecycle and menus.
	NotActivated      Msg = iota // NOT ACTIVATED
	Activate                     // ACTIVATE (title and "1 ACTIVATE")
	Serial                       // SERIAL
	Tampered                     // TAMPERED
	KeysErased                   // KEYS ERASED
	CallTechnician               // CALL TECHNICIAN
	MainMenu                     // MAIN MENU
	Sale                         // SALE (title, item, transaction type)
	TxnMgmt                      // TRANSACTION MGMT
	Settlement                   // SETTLEMENT
	SignIn                       // SIGN IN
	Technician                   // TECHNICIAN
	Void                         // VOID (title, item, transaction type)
	Journal                      // JOURNAL
	ReprintLast                  // REPRINT LAST
	Unbind                       // UNBIND
	Info                         // INFO
	ItemSupervisorPwd            // SUPERVISOR PWD (item 3 of TECHNICIAN: change it)
	State                        // STATE
	Active                       // ACTIVE (the state on the INFO screen)

	// Entries and prompts.
	Amount         // AMOUNT (the prompt)
	AmountLabel    // AMOUNT (before an amount: "AMOUNT 0.30")
	SwipeCard      // SWIPE CARD
	CardErrorAgain // CARD ERROR, AGAIN
	Processing     // PROCESSING
	SupervisorPwd  // SUPERVISOR PWD (the prompt)
	TechPwd        // TECH PWD
	WrongPwd       // WRONG PWD
	Locked         // LOCKED
	TryAgainLater  // TRY AGAIN LATER
	NewPwd         // NEW PWD
	ConfirmPwd     // CONFIRM PWD
	NotTheSame     // NOT THE SAME
	NothingChanged // NOTHING CHANGED
	Saving         // SAVING
	PwdChanged     // PWD CHANGED

	// Results.
	Approved        // APPROVED
	Declined        // DECLINED
	Error           // ERROR
	VoucherLabel    // VOUCHER (before a voucher number)
	AuthLabel       // AUTH
	BatchLabel      // BATCH
	TIDLabel        // TID
	MIDLabel        // MID
	Busy            // BUSY
	NoConnection    // NO CONNECTION
	NoResponse      // NO RESPONSE
	BadResponse     // BAD RESPONSE
	NoAnswer        // NO ANSWER
	MACError        // MAC ERROR
	KeyError        // KEY ERROR
	StorageFault    // STORAGE FAULT
	CallService     // CALL SERVICE
	PaperOut        // PAPER OUT
	PrinterFault    // PRINTER FAULT
	PrinterNoStatus // PRINTER STATUS?: the printer's answer to the paper sensor request is not a status
	Printing        // PRINTING
	Cancelled       // CANCELLED
	PleaseWait      // PLEASE WAIT
	CancelToStop    // CANCEL TO STOP
	EnterToAccept   // ENTER TO CONFIRM
	DiskFull        // DISK FULL
	SettleCall      // SETTLE, CALL SERVICE
	SignInWith      // "SIGN IN %s": a sign-in before the message failed (a format: use Lang.F)
	KeypadMissing   // NO KEYPAD
	DisplayFault    // DISPLAY FAULT

	// The storage hold (terminal/disk.go).
	StorageFull       // STORAGE FULL
	ReversalWaiting   // REVERSAL WAITING
	SettlementWaiting // SETTLEMENT WAITING
	UnbindWaiting     // UNBIND WAITING

	// Void.
	VoidBy        // VOID BY
	ItemVoucherNo // VOUCHER NO (item 1 of VOID BY)
	Time          // TIME (item 2 of VOID BY, and the prompt)
	TimeFormat    // MMDDhhmm (under the TIME prompt)
	VoucherNo     // VOUCHER NO (the prompt: the original voucher)
	VoidConfirm   // VOID?
	PickOne       // PICK ONE
	NotFound      // NOT FOUND
	AlreadyVoided // ALREADY VOIDED
	NotVoidable   // NOT VOIDABLE
	NotApproved   // NOT APPROVED
	BatchSettled  // BATCH SETTLED
	SettleFirst   // SETTLE FIRST

	// Journal and reprint.
	NoTransactions // NO TRANSACTIONS
	EnterMore      // ENTER MORE
	End            // END

	// Reversal.
	Reversal           // REVERSAL
	ReversalPending    // REVERSAL PENDING
	ReversalInProgress // REVERSAL IN PROGRESS
	HostUnreachable    // HOST UNREACHABLE
	RetryLater         // RETRY LATER

	// Settlement and sign-in.
	SettleBatch     // SETTLE BATCH?
	NetLabel        // NET
	EnterToSettle   // ENTER TO SETTLE
	Settled         // SETTLED
	SettledUploaded // SETTLED UPLOADED
	SettleFailed    // SETTLE FAILED
	BatchClosed     // BATCH CLOSED
	BatchUpload     // BATCH UPLOAD
	UploadProgress  // "%d-%d OF %d": records from-to of n (a format: use Lang.F)
	Resuming        // RESUMING
	SignedIn        // SIGNED IN
	SignInFailed    // SIGN IN FAILED
	SigningIn       // SIGNING IN

	// Unbind.
	UnbindConfirm   // UNBIND?
	UnbindSettles   // SETTLES THE BATCH,
	UnbindErases    // ERASES MERCHANT DATA
	UnbindReboots   // AND REBOOTS
	EnterToUnbind   // ENTER TO UNBIND
	Unbinding       // UNBINDING
	ErasingData     // ERASING DATA
	DoNotPowerOff   // DO NOT POWER OFF
	UnbindFailed    // UNBIND FAILED
	UnsettledBatch  // UNSETTLED BATCH (why an unbind failed)
	RetryAt         // "RETRY %s": the next attempt at a time of day (a format)
	Unbound         // UNBOUND
	Rebooting       // REBOOTING
	Installing      // INSTALLING (an update into the other slot)
	ActivationCode  // ACTIVATION CODE
	WaitingForHQ    // WAITING FOR HQ
	NoAnswerFromHQ  // NO ANSWER FROM HQ
	InstallingKeys  // INSTALLING KEYS
	SwipeSettleCard // SWIPE SETTLEMENT CARD
	CardUnreadable  // CARD UNREADABLE
	BadKCV          // BAD KCV
	BadSeal         // BAD SEAL
	Activated       // ACTIVATED
	ActivationFail  // ACTIVATION FAILED

	// Receipts: "<word> <value>" lines, the English words as the receipts
	// of the English terminal have always printed them.
	RcptMerchantName // MERCHANT (before the name)
	RcptMerchantNo   // MID
	RcptTerminalNo   // TID
	RcptCardNo       // CARD
	RcptExpiry       // EXP
	RcptTxnType      // TYPE
	RcptBatchNo      // BATCH
	RcptVoucherNo    // VOUCHER
	RcptOrigVoucher  // ORIG VOUCHER
	RcptAuthCode     // AUTH
	RcptRefNo        // REF
	RcptDateTime     // DATE
	RcptAmount       // AMOUNT
	RcptSignature    // CARDHOLDER SIGNATURE
	RcptAcknowledge  // I ACKNOWLEDGE SATISFACTORY RECEIPT
	RcptMerchantCopy // MERCHANT COPY
	RcptCardholder   // CARDHOLDER COPY
	RcptDuplicate    // DUPLICATE
	RcptSettlement   // SETTLEMENT (the settlement slip's title)

	numMsgs
)

var tables = [numLangs][numMsgs]string{
	EN: {
		NotActivated:      "NOT ACTIVATED",
		Activate:          "ACTIVATE",
		Serial:            "SERIAL",
		Tampered:          "TAMPERED",
		KeysErased:        "KEYS ERASED",
		CallTechnician:    "CALL TECHNICIAN",
		MainMenu:          "MAIN MENU",
		Sale:              "SALE",
		TxnMgmt:           "TRANSACTION MGMT",
		Settlement:        "SETTLEMENT",
		SignIn:            "SIGN IN",
		Technician:        "TECHNICIAN",
		Void:              "VOID",
		Journal:           "JOURNAL",
		ReprintLast:       "REPRINT LAST",
		Unbind:            "UNBIND",
		Info:              "INFO",
		ItemSupervisorPwd: "SUPERVISOR PWD",
		State:             "STATE",
		Active:            "ACTIVE",

		Amount:         "AMOUNT",
		AmountLabel:    "AMOUNT",
		SwipeCard:      "SWIPE CARD",
		CardErrorAgain: "CARD ERROR, AGAIN",
		Processing:     "PROCESSING",
		SupervisorPwd:  "SUPERVISOR PWD",
		TechPwd:        "TECH PWD",
		WrongPwd:       "WRONG PWD",
		Locked:         "LOCKED",
		TryAgainLater:  "TRY AGAIN LATER",
		NewPwd:         "NEW PWD",
		ConfirmPwd:     "CONFIRM PWD",
		NotTheSame:     "NOT THE SAME",
		NothingChanged: "NOTHING CHANGED",
		Saving:         "SAVING",
		PwdChanged:     "PWD CHANGED",

		Approved:        "APPROVED",
		Declined:        "DECLINED",
		Error:           "ERROR",
		VoucherLabel:    "VOUCHER",
		AuthLabel:       "AUTH",
		BatchLabel:      "BATCH",
		TIDLabel:        "TID",
		MIDLabel:        "MID",
		Busy:            "BUSY",
		NoConnection:    "NO CONNECTION",
		NoResponse:      "NO RESPONSE",
		BadResponse:     "BAD RESPONSE",
		NoAnswer:        "NO ANSWER",
		MACError:        "MAC ERROR",
		KeyError:        "KEY ERROR",
		StorageFault:    "STORAGE FAULT",
		CallService:     "CALL SERVICE",
		PaperOut:        "PAPER OUT",
		PrinterFault:    "PRINTER FAULT",
		PrinterNoStatus: "PRINTER STATUS?",
		Printing:        "PRINTING",
		Cancelled:       "CANCELLED",
		PleaseWait:      "PLEASE WAIT",
		CancelToStop:    "CANCEL TO STOP",
		EnterToAccept:   "ENTER TO CONFIRM",
		DiskFull:        "DISK FULL",
		SettleCall:      "SETTLE, CALL SERVICE",
		SignInWith:      "SIGN IN %s",
		KeypadMissing:   "NO KEYPAD",
		DisplayFault:    "DISPLAY FAULT",

		StorageFull:       "STORAGE FULL",
		ReversalWaiting:   "REVERSAL WAITING",
		SettlementWaiting: "SETTLEMENT WAITING",
		UnbindWaiting:     "UNBIND WAITING",

		VoidBy:        "VOID BY",
		ItemVoucherNo: "VOUCHER NO",
		Time:          "TIME",
		TimeFormat:    "MMDDhhmm",
		VoucherNo:     "VOUCHER NO",
		VoidConfirm:   "VOID?",
		PickOne:       "PICK ONE",
		NotFound:      "NOT FOUND",
		AlreadyVoided: "ALREADY VOIDED",
		NotVoidable:   "NOT VOIDABLE",
		NotApproved:   "NOT APPROVED",
		BatchSettled:  "BATCH SETTLED",
		SettleFirst:   "SETTLE FIRST",

		NoTransactions: "NO TRANSACTIONS",
		EnterMore:      "ENTER MORE",
		End:            "END",

		Reversal:           "REVERSAL",
		ReversalPending:    "REVERSAL PENDING",
		ReversalInProgress: "REVERSAL IN PROGRESS",
		HostUnreachable:    "HOST UNREACHABLE",
		RetryLater:         "RETRY LATER",

		SettleBatch:     "SETTLE BATCH?",
		NetLabel:        "NET",
		EnterToSettle:   "ENTER TO SETTLE",
		Settled:         "SETTLED",
		SettledUploaded: "SETTLED UPLOADED",
		SettleFailed:    "SETTLE FAILED",
		BatchClosed:     "BATCH CLOSED",
		BatchUpload:     "BATCH UPLOAD",
		UploadProgress:  "%d-%d OF %d",
		Resuming:        "RESUMING",
		SignedIn:        "SIGNED IN",
		SignInFailed:    "SIGN IN FAILED",
		SigningIn:       "SIGNING IN",

		UnbindConfirm:   "UNBIND?",
		UnbindSettles:   "SETTLES THE BATCH,",
		UnbindErases:    "ERASES MERCHANT DATA",
		UnbindReboots:   "AND REBOOTS",
		EnterToUnbind:   "ENTER TO UNBIND",
		Unbinding:       "UNBINDING",
		ErasingData:     "ERASING DATA",
		DoNotPowerOff:   "DO NOT POWER OFF",
		UnbindFailed:    "UNBIND FAILED",
		UnsettledBatch:  "UNSETTLED BATCH",
		RetryAt:         "RETRY %s",
		Unbound:         "UNBOUND",
		Rebooting:       "REBOOTING",
		Installing:      "INSTALLING",
		ActivationCode:  "ACTIVATION CODE",
		WaitingForHQ:    "WAITING FOR HQ",
		NoAnswerFromHQ:  "NO ANSWER FROM HQ",
		InstallingKeys:  "INSTALLING KEYS",
		SwipeSettleCard: "SWIPE SETTLEMENT CARD",
		CardUnreadable:  "CARD UNREADABLE",
		BadKCV:          "BAD KCV",
		BadSeal:         "BAD SEAL",
		Activated:       "ACTIVATED",
		ActivationFail:  "ACTIVATION FAILED",

		RcptMerchantName: "MERCHANT",
		RcptMerchantNo:   "MID",
		RcptTerminalNo:   "TID",
		RcptCardNo:       "CARD",
		RcptExpiry:       "EXP",
		RcptTxnType:      "TYPE",
		RcptBatchNo:      "BATCH",
		RcptVoucherNo:    "VOUCHER",
		RcptOrigVoucher:  "ORIG VOUCHER",
		RcptAuthCode:     "AUTH",
		RcptRefNo:        "REF",
		RcptDateTime:     "DATE",
		RcptAmount:       "AMOUNT",
		RcptSignature:    "CARDHOLDER SIGNATURE",
		RcptAcknowledge:  "I ACKNOWLEDGE SATISFACTORY RECEIPT",
		RcptMerchantCopy: "MERCHANT COPY",
		RcptCardholder:   "CARDHOLDER COPY",
		RcptDuplicate:    "DUPLICATE",
		RcptSettlement:   "SETTLEMENT",
	},
	// The words of spec/terminal.md's table are exact; the others are the
	// usual words of Chinese bank-card terminals. The "?" of 确认撤销? and
	// 确认结算? is the ASCII one (spec); other punctuation is full width.
	ZhCN: {
		NotActivated:      "未激活",
		Activate:          "激活",
		Serial:            "序列号",
		Tampered:          "防拆触发",
		KeysErased:        "密钥已清除",
		CallTechnician:    "请联系维护人员",
		MainMenu:          "主菜单",
		Sale:              "消费",
		TxnMgmt:           "交易管理",
		Settlement:        "结算",
		SignIn:            "签到",
		Technician:        "系统管理",
		Void:              "撤销",
		Journal:           "交易明细",
		ReprintLast:       "重打印",
		Unbind:            "解绑",
		Info:              "终端信息",
		ItemSupervisorPwd: "修改主管密码",
		State:             "状态",
		Active:            "已激活",

		Amount:         "请输入金额",
		AmountLabel:    "金额",
		SwipeCard:      "请刷卡",
		CardErrorAgain: "读卡错误，请重刷",
		Processing:     "处理中",
		SupervisorPwd:  "主管密码",
		TechPwd:        "维护密码",
		WrongPwd:       "密码不正确",
		Locked:         "密码已锁定",
		TryAgainLater:  "请稍后再试",
		NewPwd:         "新密码",
		ConfirmPwd:     "确认新密码",
		NotTheSame:     "两次输入不一致",
		NothingChanged: "密码未修改",
		Saving:         "正在保存",
		PwdChanged:     "密码已修改",

		Approved:        "交易成功",
		Declined:        "交易拒绝",
		Error:           "错误",
		VoucherLabel:    "凭证号",
		AuthLabel:       "授权码",
		BatchLabel:      "批次号",
		TIDLabel:        "终端编号",
		MIDLabel:        "商户编号",
		Busy:            "终端忙",
		NoConnection:    "无法连接主机",
		NoResponse:      "主机无应答",
		BadResponse:     "应答报文错误",
		NoAnswer:        "无应答",
		MACError:        "MAC校验错",
		KeyError:        "密钥错误",
		StorageFault:    "存储故障",
		CallService:     "请联系客服",
		PaperOut:        "缺纸",
		PrinterFault:    "打印机故障",
		PrinterNoStatus: "打印机状态未知",
		Printing:        "正在打印",
		Cancelled:       "已取消",
		PleaseWait:      "请稍候",
		CancelToStop:    "取消键停止",
		EnterToAccept:   "按确认键继续",
		DiskFull:        "存储空间不足",
		SettleCall:      "请结算并联系客服",
		SignInWith:      "签到失败 %s",
		KeypadMissing:   "键盘未连接",
		DisplayFault:    "显示屏故障",

		StorageFull:       "存储空间不足",
		ReversalWaiting:   "冲正待发送",
		SettlementWaiting: "结算待完成",
		UnbindWaiting:     "解绑待完成",

		VoidBy:        "撤销方式",
		ItemVoucherNo: "凭证号",
		Time:          "交易时间",
		TimeFormat:    "月日时分",
		VoucherNo:     "原凭证号",
		VoidConfirm:   "确认撤销?",
		PickOne:       "请选择",
		NotFound:      "原交易不存在",
		AlreadyVoided: "原交易已撤销",
		NotVoidable:   "原交易不可撤销",
		NotApproved:   "原交易未成功",
		BatchSettled:  "批次已结算",
		SettleFirst:   "请先结算",

		NoTransactions: "无交易记录",
		EnterMore:      "确认键翻页",
		End:            "结束",

		Reversal:           "冲正",
		ReversalPending:    "冲正未完成",
		ReversalInProgress: "正在冲正",
		HostUnreachable:    "无法连接主机",
		RetryLater:         "请稍后重试",

		SettleBatch:     "确认结算?",
		NetLabel:        "净额",
		EnterToSettle:   "按确认键结算",
		Settled:         "结算成功",
		SettledUploaded: "结算成功 已批上送",
		SettleFailed:    "结算失败",
		BatchClosed:     "批次已关闭",
		BatchUpload:     "批上送",
		UploadProgress:  "%d-%d/%d笔",
		Resuming:        "继续处理",
		SignedIn:        "签到成功",
		SignInFailed:    "签到失败",
		SigningIn:       "签到中",

		UnbindConfirm:   "确认解绑?",
		UnbindSettles:   "将先结算批次，",
		UnbindErases:    "清除商户数据",
		UnbindReboots:   "并重启终端",
		EnterToUnbind:   "按确认键解绑",
		Unbinding:       "解绑中",
		ErasingData:     "正在清除数据",
		DoNotPowerOff:   "请勿断电",
		UnbindFailed:    "解绑失败",
		UnsettledBatch:  "批次未结算",
		RetryAt:         "%s 重试",
		Unbound:         "已解绑",
		Rebooting:       "正在重启",
		Installing:      "正在安装",
		ActivationCode:  "激活码",
		WaitingForHQ:    "等待总部响应",
		NoAnswerFromHQ:  "总部无响应",
		InstallingKeys:  "正在安装密钥",
		SwipeSettleCard: "请刷结算卡",
		CardUnreadable:  "读卡失败",
		BadKCV:          "密钥校验值错",
		BadSeal:         "密文校验错",
		Activated:       "激活成功",
		ActivationFail:  "激活失败",

		RcptMerchantName: "商户名称",
		RcptMerchantNo:   "商户编号",
		RcptTerminalNo:   "终端编号",
		RcptCardNo:       "卡号",
		RcptExpiry:       "有效期",
		RcptTxnType:      "交易类型",
		RcptBatchNo:      "批次号",
		RcptVoucherNo:    "凭证号",
		RcptOrigVoucher:  "原凭证号",
		RcptAuthCode:     "授权码",
		RcptRefNo:        "参考号",
		RcptDateTime:     "日期时间",
		RcptAmount:       "金额(RMB)",
		RcptSignature:    "持卡人签名",
		RcptAcknowledge:  "本人确认以上交易，同意将其记入本卡账户",
		RcptMerchantCopy: "商户存根",
		RcptCardholder:   "持卡人存根",
		RcptDuplicate:    "重打印凭证",
		RcptSettlement:   "结算单",
	},
}

// declines are the names of the response codes an acquirer declines with
// (spec/terminal.md "Language"; English as the core showed them).
var declines = []struct{ code, en, zh string }{
	{"12", "INVALID TXN", "无效交易"},
	{"25", "NO ORIGINAL", "原交易不存在"},
	{"51", "INSUFFICIENT FUNDS", "余额不足"},
	{"55", "WRONG PIN", "密码错"},
	{"64", "AMOUNT MISMATCH", "金额不符"},
	{"94", "DUPLICATE", "重复交易"},
	{"96", "SWITCH FAULT", "系统故障"},
	{"97", "TERMINAL NOT REGISTERED", "终端未登记"},
	{"A0", "MAC ERROR", "MAC校验错"},
}
